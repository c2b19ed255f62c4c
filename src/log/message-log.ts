import { pino, type Logger } from 'pino';
import { LOG_LINE_CAP } from '../limits.js';

// JSON (and pino) escape only U+0000-U+001F. DEL and the C1 controls (U+0080-U+009F, where
// U+009B is a terminal's CSI) would reach `tail -f` raw, and U+2028/U+2029 (and U+0085) split a
// record for line-oriented readers. They can only occur inside JSON strings, where \uXXXX is the
// same character, so the record stays valid and `line` reads back exactly.
const UNSAFE_TEST = /[\u007f-\u009f\u2028\u2029]/;
const UNSAFE = /[\u007f-\u009f\u2028\u2029]/g;

function escapeRest(json: string): string {
  if (!UNSAFE_TEST.test(json)) return json;
  return json.replace(UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * `text` as a JSON string, with escapeRest's escapes too. Printable ASCII other than `"` and `\`
 * (every reply and every well-formed request) needs none, and is quoted as it is: JSON.stringify
 * and the test for the rest took 210 ns a line against 100 for this scan (micro-benchmark), and a
 * flood of VALUEs made two records a request. test/message-log.ts holds the two equal.
 */
export function jsonString(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return escapeRest(JSON.stringify(text));
  }
  return `"${text}"`;
}

/** Where formatted records go: a LogFile in the server, an array in tests. */
export interface LineSink {
  /** Returns false when the record was dropped (the log's memory cap was reached). */
  write(text: string): boolean | void;
}

export type Direction = 'in' | 'out';

/** pino's level number for `info`, which every message log record has. */
const INFO = 30;

/**
 * The message log: one pino JSON record per protocol line in each direction, plus connection open
 * and close. Records carry `time` (epoch ms), `conn`, `id` once known, `dir` and `line`. JSON
 * escapes control characters, so no peer input can forge a record or a terminal escape.
 */
export class MessageLog {
  readonly #root: Logger;
  readonly #sink: LineSink;
  readonly #now: () => number;
  readonly #node: string | undefined;

  /** `node` names this server in every record (`--node-name`), so several servers' logs merge. */
  constructor(sink: LineSink, now: () => number = Date.now, node?: string) {
    this.#sink = sink;
    this.#now = now;
    this.#node = node;
    // messageKey 'line' makes `pino-pretty` show the protocol line as each record's message.
    this.#root = pino(
      {
        base: node === undefined ? null : { node },
        messageKey: 'line',
        timestamp: () => `,"time":${now()}`,
      },
      { write: (s) => sink.write(escapeRest(s)) },
    );
  }

  /** A logger bound to one connection (and its id once known). */
  forConnection(conn: number, id?: string): ConnectionLog {
    return new ConnectionLog(this.#root, this.#sink, this.#now, conn, id, this.#node);
  }
}

export class ConnectionLog {
  readonly #root: Logger;
  readonly #sink: LineSink;
  readonly #now: () => number;
  readonly #bindings: { conn: number; id?: string };
  readonly #bound: string; // the bindings as JSON members: `,"conn":7,"id":"alice"`

  constructor(
    root: Logger,
    sink: LineSink,
    now: () => number,
    conn: number,
    id?: string,
    node?: string,
  ) {
    this.#root = root;
    this.#sink = sink;
    this.#now = now;
    this.#bindings = id === undefined ? { conn } : { conn, id };
    const named = node === undefined ? '' : `,"node":${JSON.stringify(node)}`;
    this.#bound = `${named},"conn":${conn}${id === undefined ? '' : `,"id":${JSON.stringify(id)}`}`;
  }

  /**
   * Two records per request make this the server's hottest path, so the record is built by hand,
   * in exactly the bytes pino writes for `info({ dir }, text)` from a child bound to `conn` and
   * `id` (test/message-log.ts holds the two equal). At 10,000 spec clients that took the server's
   * user CPU from 0.44 to 0.35 cores.
   */
  line(dir: Direction, text: string, raw: string | null = null): boolean {
    const cut = text.length <= LOG_LINE_CAP ? null : text.slice(0, LOG_LINE_CAP);
    const truncated = cut === null ? '' : `,"truncated":${text.length}`;
    // `raw` is base64 (no escaping needed): the exact bytes, when they were not valid UTF-8.
    const bytes = raw === null ? '' : `,"raw":"${raw}"`;
    const line = jsonString(cut ?? text);
    return (
      this.#sink.write(
        `{"level":${INFO},"time":${this.#now()}${this.#bound},"dir":"${dir}"${truncated}${bytes},"line":${line}}\n`,
      ) !== false
    );
  }

  /**
   * A run of `count` blank (or whitespace-only) request lines, as one record: they get no reply,
   * so one record per line would let a peer grow the log ~65 bytes for every byte it sends.
   */
  blank(count: number): void {
    this.#sink.write(
      `{"level":${INFO},"time":${this.#now()}${this.#bound},"dir":"in","blank":${count}}\n`,
    );
  }

  event(event: 'open' | 'close' | 'refused', fields: Record<string, unknown>): void {
    this.#root.info({ ...this.#bindings, event, ...fields });
  }
}
