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
/**
 * Lines are appended to a string and encoded into the buffer this many characters at a time (and
 * whenever the buffer is sealed). Under a flood of VALUEs, encoding each ~95-byte record on its own
 * took 1.40 s of a 10.5 s busy profile, and a 16k-character string at a time 0.95 s: one call, and
 * one flattening of the string, instead of one per record (BENCHMARKS.md, "Where the time goes").
 */
const ROPE_CHARS = 16 * 1024;
/** A buffer grown past this by a burst is let go once written, so RSS comes back down. */
const KEEP_BUFFER_MAX = 1024 * 1024;

/**
 * The log's unwritten lines: appended to a string, encoded in batches into one buffer (no
 * per-line allocation), sealed into `queue` for writing. One counter holds every encoded unwritten
 * line byte, buffer and queue alike, and no line is taken past `limit` (the string's characters
 * count three bytes each against it, the most UTF-8 takes): before, a flush took its bytes out of
 * the count while its write was in flight, so each failed write on a full disk let another cap's
 * worth in.
 */
export class Backlog {
  readonly queue: Step[] = [];
  #limit: number;
  #buffer: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER);
  #length = 0;
  #rope = ''; // lines not yet encoded
  #spare: Buffer | null = null;
  #unwritten = 0;
  #held = 0; // line bytes written but not yet synced: kept to be written again (see release)
  #dropped = 0; // since the last `dropped` note
  #droppedTotal = 0;
  #accepted = 0; // line bytes encoded since the start (the rope is added by `accepted`)

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Unwritten line bytes; the rope counts a byte per character (exact for ASCII). */
  get unwritten(): number {
    return this.#unwritten + this.#rope.length;
  }

  /**
   * Bytes of the lines taken so far. Lines not yet encoded count a byte per character, as in
   * `unwritten`: exact for ASCII, and a multi-byte character's extra bytes are added once encoded,
   * so the count never goes down and never lags a scrape by a whole rope (/metrics reads it).
   */
  get accepted(): number {
    return this.#accepted + this.#rope.length;
  }

  get dropped(): number {
    return this.#droppedTotal;
  }

  /** Queues one line; false (and counted) if it does not fit under the cap. */
  add(text: string): boolean {
    // UTF-8 takes at most 3 bytes per UTF-16 unit. Measured exactly only near the cap, where the
    // estimate could drop a line that fits.
    // Bytes held for a sync count too: a disk that takes writes but fails every fdatasync must
    // not grow them without bound.
    if (this.#unwritten + this.#held + (this.#rope.length + text.length) * 3 > this.#limit) {
      this.#encode();
      if (this.#unwritten + this.#held + Buffer.byteLength(text) > this.#limit) return this.drop();
    }
    this.#rope += text;
    if (this.#rope.length >= ROPE_CHARS) this.#encode();
    return true;
  }

  #encode(): void {
    if (this.#rope.length === 0) return;
    const most = this.#rope.length * 3;
    if (this.#length + most > this.#buffer.length) this.#grow(this.#length + most);
    const n = this.#buffer.write(this.#rope, this.#length);
    this.#rope = '';
    this.#length += n;
    this.#unwritten += n;
    this.#accepted += n;
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
    this.#encode();
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
    if (!step.lines) return;
    this.#unwritten -= n;
    this.#held += n;
  }

  /**
   * The first step is written: takes it off the queue. Its buffer is reused only once `release`d:
   * the writer keeps the bytes until they are synced, to write them again if the sync fails.
   */
  shift(): Step | undefined {
    return this.queue.shift();
  }

  /** A step's bytes are on disk: its buffer may be reused. */
  release(step: Step): void {
    if (step.lines) this.#held -= step.at;
    if (step.whole && step.whole.length <= KEEP_BUFFER_MAX) this.#spare ??= step.whole;
  }

  #grow(bytes: number): void {
    const size = Math.max(bytes, Math.min(this.#buffer.length * 2, this.#limit));
    const grown = Buffer.allocUnsafe(size);
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
}
