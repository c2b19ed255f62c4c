/**
 * Bytes on their way to the file, written from `at` to `bytes.length`. `lines` counts towards
 * the cap (queued records; `whole` is their buffer, reused once written); the file's own notes
 * (dropped, reopened, rotated) do not. `reopen`: switch to a fresh file at the path before these
 * bytes, which are its first record; settled once switched (or not).
 */
export type Step = {
  bytes: Buffer;
  at: number;
  lines: boolean;
  whole?: Buffer;
  reopen?: { resolve(): void; reject(err: unknown): void } | null;
};

const INITIAL_BUFFER = 64 * 1024;
/** A buffer grown past this by a burst is let go once written, so RSS comes back down. */
const KEEP_BUFFER_MAX = 1024 * 1024;

/**
 * The log's unwritten lines: encoded straight into one buffer (no per-line allocation), sealed
 * into `queue` for writing. One counter holds every unwritten line byte, buffer and queue alike,
 * and no line is taken past `limit`: before, a flush took its bytes out of the count while its
 * write was in flight, so each failed write on a full disk let another cap's worth in.
 */
export class Backlog {
  readonly queue: Step[] = [];
  #limit: number;
  #buffer: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER);
  #length = 0;
  #spare: Buffer | null = null;
  #unwritten = 0;
  #dropped = 0; // since the last `dropped` note
  #droppedTotal = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get unwritten(): number {
    return this.#unwritten;
  }

  get dropped(): number {
    return this.#droppedTotal;
  }

  /** Queues one line; false (and counted) if it does not fit under the cap. */
  add(text: string): boolean {
    const most = text.length * 3; // UTF-8 bytes per UTF-16 unit, at most
    // Measured exactly only near the cap, where the estimate could drop a line that fits.
    if (this.#unwritten + most > this.#limit) {
      if (this.#unwritten + Buffer.byteLength(text) > this.#limit) return this.drop();
    }
    if (this.#length + most > this.#buffer.length) this.#grow(this.#length + most);
    const n = this.#buffer.write(text, this.#length);
    this.#length += n;
    this.#unwritten += n;
    return true;
  }

  drop(): false {
    this.#dropped++;
    this.#droppedTotal++;
    return false;
  }

  /**
   * Moves the buffer (after a note of the lines dropped so far) to the queue; new lines start in
   * a fresh buffer. The writer seals only once the queue is written, so however many writes fail,
   * there are two buffers at most (reopen() also seals, once per call).
   */
  seal(withNote: boolean): void {
    if (withNote && this.#dropped > 0) {
      const note = `{"event":"dropped","lines":${this.#dropped}}\n`;
      this.queue.push({ bytes: Buffer.from(note), at: 0, lines: false });
      this.#dropped = 0;
    }
    if (this.#length === 0) return;
    const whole = this.#buffer;
    this.queue.push({ bytes: whole.subarray(0, this.#length), at: 0, lines: true, whole });
    this.#buffer = this.#spare ?? Buffer.allocUnsafe(INITIAL_BUFFER);
    this.#spare = null;
    this.#length = 0;
  }

  /** `n` bytes of the queue's first step reached the file. */
  wrote(step: Step, n: number): void {
    step.at += n;
    if (step.lines) this.#unwritten -= n;
  }

  /** The first step is written: drop it, keeping its buffer for reuse. */
  shift(): void {
    const step = this.queue.shift();
    if (step?.whole && step.whole.length <= KEEP_BUFFER_MAX) this.#spare ??= step.whole;
  }

  #grow(bytes: number): void {
    const size = Math.max(bytes, Math.min(this.#buffer.length * 2, this.#limit));
    const grown = Buffer.allocUnsafe(size);
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
}
