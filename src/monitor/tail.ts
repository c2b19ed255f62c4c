import { TAIL_LINES_PER_UPDATE } from './defaults.js';

/** The newest `size` lines of one update, and how many older ones were passed over. */
class Sample {
  readonly #lines: string[];
  #next = 0;
  #seen = 0;

  constructor(size: number) {
    this.#lines = new Array<string>(size);
  }

  push(line: string): void {
    this.#lines[this.#next] = line;
    this.#next = (this.#next + 1) % this.#lines.length;
    this.#seen++;
  }

  take(): { lines: string[]; skipped: number } {
    const size = this.#lines.length;
    const kept = Math.min(this.#seen, size);
    const lines: string[] = [];
    // Records end in LF; trimmed here, for the few sent, rather than for every record taken in.
    for (let i = kept; i > 0; i--)
      lines.push(this.#lines[(this.#next - i + size) % size]!.trimEnd());
    const skipped = this.#seen - kept;
    this.#seen = 0;
    return { lines, skipped };
  }
}

const ID_FIELD = ',"id":"';

/**
 * The message log as the page sees it: sampled per update, one sample per filter ('' for all
 * lines, else one id), shared by every viewer with that filter. Empty, and skipped by the log
 * tap, while nobody watches.
 */
export class Tail {
  readonly #samples = new Map<string, Sample>();
  #all: Sample | null = null;

  get active(): boolean {
    return this.#samples.size > 0;
  }

  /** Keeps a sample for `filter` from now on (idempotent). */
  watch(filter: string): void {
    if (this.#samples.has(filter)) return;
    const sample = new Sample(TAIL_LINES_PER_UPDATE);
    this.#samples.set(filter, sample);
    if (filter === '') this.#all = sample;
  }

  /** Keeps samples only for these filters. */
  retain(filters: Set<string>): void {
    for (const filter of this.#samples.keys())
      if (!filters.has(filter)) this.#samples.delete(filter);
    if (!filters.has('')) this.#all = null;
  }

  /** One message-log record (a JSON line). */
  push(record: string): void {
    this.#all?.push(record);
    if (this.#samples.size === (this.#all === null ? 0 : 1)) return;
    // Records carry `"id":"…"` right after `conn` once known; ids need no JSON escaping.
    const at = record.indexOf(ID_FIELD);
    if (at === -1) return;
    const start = at + ID_FIELD.length;
    const id = record.slice(start, record.indexOf('"', start));
    if (id !== '') this.#samples.get(id)?.push(record);
  }

  /** Each filter's lines since the last call. */
  take(): Map<string, { lines: string[]; skipped: number }> {
    const out = new Map<string, { lines: string[]; skipped: number }>();
    for (const [filter, sample] of this.#samples) out.set(filter, sample.take());
    return out;
  }
}
