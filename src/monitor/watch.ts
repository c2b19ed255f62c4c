import type { ParsedLine, Verb } from '../protocol/requests.js';
import { HISTORY_SAMPLES, RATE_TICKS } from './defaults.js';

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

/**
 * What the connections read of the live view's sampler: whether it runs, and the number of its
 * latest tick. One object, shared by the monitor, the sampler and every connection's watch.
 */
export type Sampling = { on: boolean; tick: number };

/** Request counts kept per connection: the last RATE_TICKS ticks' rate needs one more. */
export const RING = RATE_TICKS + 1;
/** A tick at which the connection had no value (no HELLO yet), in its Int8Array history. */
export const NO_VALUE = -1;

/** The decimal number from `from` to the end of `line` (a reply's value), without slicing it. */
function digits(line: string, from: number): number {
  let n = 0;
  for (let i = from; i < line.length; i++) n = n * 10 + line.charCodeAt(i) - 48;
  return n;
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
 *
 * While the sampler runs, the connection's request count and value at each tick go into two small
 * rings, filled lazily: a request or a new value first fills the ticks since the last one filled
 * with the count and value they had (nothing changed in between), and the sampler fills them up to
 * its latest tick only for the rows it shows. So a tick costs nothing per connection, and a
 * connection costs nothing per tick; idle ones not shown are never touched.
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
  // Sampler state, kept only while the sampler runs (see the class comment). The rings are
  // allocated at their first fill: request counts by tick (RING), values by tick (HISTORY_SAMPLES).
  rateRing: Float64Array | null = null;
  history: Int8Array | null = null;
  /** The value as of now (from the store, then from OK and VALUE replies). */
  value: number | null = null;
  /** The first tick this connection was sampled at; the ticks before it are not its own. */
  firstTick = 0;
  /** The last tick whose request count is in `rateRing`, and whose value is in `history`. */
  countsTo = -1;
  valuesTo = -1;
  readonly #counts: Counts;
  readonly #sampling: Sampling;
  readonly #onClose: (watch: ClientWatch) => void;

  constructor(
    number: number,
    remote: string,
    since: number,
    counts: Counts,
    sampling: Sampling,
    onClose: (watch: ClientWatch) => void,
  ) {
    this.number = number;
    this.remote = remote;
    this.since = since;
    this.#counts = counts;
    this.#sampling = sampling;
    this.#onClose = onClose;
    if (sampling.on) this.startSampling(null);
  }

  /** Sampled from the next tick on, with `value`, and no history before it. */
  startSampling(value: number | null): void {
    this.rateRing = null;
    this.history = null;
    this.value = value;
    this.firstTick = this.#sampling.tick + 1;
    this.countsTo = this.valuesTo = this.#sampling.tick;
  }

  /** Fills both rings up to `tick` with the count and value now. */
  fillTo(tick: number): void {
    this.#fillCounts(tick);
    this.#fillValues(tick);
  }

  /** The value changed (while sampling): the ticks before now keep the old one. */
  setValue(value: number | null): void {
    if (value === this.value) return;
    this.#fillValues(this.#sampling.tick);
    this.value = value;
  }

  // A long gap (a row not shown for a while) writes each ring once over, not once per tick.
  #fillCounts(tick: number): void {
    if (this.countsTo >= tick) return;
    const ring = (this.rateRing ??= new Float64Array(RING));
    for (let t = Math.max(this.countsTo + 1, tick - RING + 1); t <= tick; t++) {
      ring[t % RING] = this.requests;
    }
    this.countsTo = tick;
  }

  #fillValues(tick: number): void {
    if (this.valuesTo >= tick) return;
    const history = (this.history ??= new Int8Array(HISTORY_SAMPLES).fill(NO_VALUE));
    const value = this.value ?? NO_VALUE;
    for (let t = Math.max(this.valuesTo + 1, tick - HISTORY_SAMPLES + 1); t <= tick; t++) {
      history[t % HISTORY_SAMPLES] = value;
    }
    this.valuesTo = tick;
  }

  /** A request line (not a blank one) read at `at`. */
  request(parsed: ParsedLine, at: number): void {
    if (this.#sampling.on) this.#fillCounts(this.#sampling.tick);
    this.requests++;
    this.lastRequestAt = at;
    this.#counts.requests[parsed.type === 'request' ? parsed.request.verb : 'INVALID']++;
  }

  /** The reply lines as sent. The common kinds are told apart without slicing the line. */
  replies(lines: readonly string[]): void {
    const c = this.#counts;
    for (const line of lines) {
      if (line.startsWith('OK ')) {
        c.ok++;
        if (this.#sampling.on) this.setValue(digits(line, 3));
      } else if (line.startsWith('EVEN ')) {
        c.even++;
        this.increment = Number(line.slice(5));
      } else if (line.startsWith('ODD ')) {
        c.odd++;
        this.increment = Number(line.slice(4));
      } else if (line.startsWith('VALUE ')) {
        c.value++;
        if (this.#sampling.on) this.setValue(digits(line, 6));
      } else if (line === 'PONG') c.pong++;
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
