import type { ParsedLine, Verb } from '../protocol/requests.js';

/** The label values of parity_requests_total: the verbs, and lines that parse as no request. */
export type RequestLabel = Verb | 'INVALID';

/** Counters the connections bump on the hot path: plain integers in fixed-shape objects. */
export type Counts = {
  requests: Record<RequestLabel, number>;
  /** Replies by `kind` or `kind code` (ERR and BYE); turned into labels only at scrape time. */
  replies: Map<string, number>;
  ok: number;
  value: number;
  even: number;
  odd: number;
  pong: number;
};

export function newCounts(): Counts {
  return {
    requests: {
      HELLO: 0,
      VALUE: 0,
      EVEN: 0,
      ODD: 0,
      PING: 0,
      HELP: 0,
      QUIT: 0,
      AUTH: 0,
      INVALID: 0,
    },
    replies: new Map(),
    ok: 0,
    value: 0,
    even: 0,
    odd: 0,
    pong: 0,
  };
}

/** How a close reason reads on the page: the BYE codes and QUIT as on the wire, the rest plainly. */
export function closeLabel(reason: string): string {
  if (reason === 'quit') return 'QUIT';
  if (reason === 'peer closed' || reason.startsWith('error ')) return 'dropped';
  if (reason === 'peer half-closed') return 'EOF';
  return reason;
}

/**
 * One connection as the monitor sees it. The connection calls `request`, `replies` and `closed`;
 * each is a few integer or field updates. Everything else (rates, charts) is the sampler's, and
 * exists only while someone watches.
 */
export class ClientWatch {
  readonly number: number;
  readonly remote: string;
  readonly since: number;
  id: string | null = null;
  requests = 0;
  lastRequestAt: number | null = null;
  /** The last EVEN or ODD reply's number: what the client adds next. */
  increment: number | null = null;
  closedAt: number | null = null;
  reason: string | null = null;
  /** The value when it closed (an open row reads the store). */
  finalValue: number | null = null;
  // Sampler state, allocated on first sample: request counts per tick, value per tick.
  rateRing: Float64Array | null = null;
  history: Int8Array | null = null;
  samples = 0;
  readonly #counts: Counts;
  readonly #onClose: (watch: ClientWatch) => void;

  constructor(
    number: number,
    remote: string,
    since: number,
    counts: Counts,
    onClose: (watch: ClientWatch) => void,
  ) {
    this.number = number;
    this.remote = remote;
    this.since = since;
    this.#counts = counts;
    this.#onClose = onClose;
  }

  /** A request line (not a blank one) read at `at`. */
  request(parsed: ParsedLine, at: number): void {
    this.requests++;
    this.lastRequestAt = at;
    this.#counts.requests[parsed.type === 'request' ? parsed.request.verb : 'INVALID']++;
  }

  /** The reply lines as sent. The common kinds are told apart without slicing the line. */
  replies(lines: readonly string[]): void {
    const c = this.#counts;
    for (const line of lines) {
      if (line.startsWith('OK ')) c.ok++;
      else if (line.startsWith('EVEN ')) {
        c.even++;
        this.increment = Number(line.slice(5));
      } else if (line.startsWith('ODD ')) {
        c.odd++;
        this.increment = Number(line.slice(4));
      } else if (line.startsWith('VALUE ')) c.value++;
      else if (line === 'PONG') c.pong++;
      else {
        const space = line.indexOf(' ');
        const kind = space === -1 ? line : line.slice(0, space);
        const end = line.indexOf(' ', space + 1);
        const key =
          kind === 'ERR' || kind === 'BYE' ? line.slice(0, end === -1 ? undefined : end) : kind;
        c.replies.set(key, (c.replies.get(key) ?? 0) + 1);
      }
    }
  }

  closed(reason: string): void {
    if (this.reason !== null) return;
    this.reason = closeLabel(reason);
    this.#onClose(this);
  }
}
