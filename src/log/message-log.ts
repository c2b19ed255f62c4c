import { pino, type Logger } from 'pino';
import { LOG_LINE_CAP } from '../limits.js';

// JSON (and pino) escape only U+0000-U+001F. DEL and the C1 controls (U+0080-U+009F, where
// U+009B is a terminal's CSI) would reach `tail -f` raw, and U+2028/U+2029 (and U+0085) split a
// record for line-oriented readers. They can only occur inside JSON strings, where \uXXXX is the
// same character, so the record stays valid and `line` reads back exactly.
const UNSAFE = /[\u007f-\u009f\u2028\u2029]/g;

function escapeRest(record: string): string {
  UNSAFE.lastIndex = 0;
  if (!UNSAFE.test(record)) return record;
  return record.replace(UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Where formatted records go: a LogFile in the server, an array in tests. */
export interface LineSink {
  write(text: string): void;
}

export type Direction = 'in' | 'out';

/**
 * The message log: one pino JSON record per protocol line in each direction, plus connection open
 * and close. Records carry `time` (epoch ms), `conn`, `id` once known, `dir` and `line`. JSON
 * escapes control characters, so no peer input can forge a record or a terminal escape.
 */
export class MessageLog {
  readonly #root: Logger;

  constructor(sink: LineSink) {
    // messageKey 'line' makes `pino-pretty` show the protocol line as each record's message.
    this.#root = pino(
      { base: null, messageKey: 'line' },
      { write: (s) => sink.write(escapeRest(s)) },
    );
  }

  /** A logger bound to one connection (and its id once known). */
  forConnection(conn: number, id?: string): ConnectionLog {
    return new ConnectionLog(this.#root.child(id === undefined ? { conn } : { conn, id }));
  }
}

export class ConnectionLog {
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  line(dir: Direction, text: string): void {
    if (text.length <= LOG_LINE_CAP) this.#log.info({ dir }, text);
    else this.#log.info({ dir, truncated: text.length }, text.slice(0, LOG_LINE_CAP));
  }

  event(event: 'open' | 'close' | 'refused', fields: Record<string, unknown>): void {
    this.#log.info({ event, ...fields });
  }
}
