const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines. Pure: bytes in, strings out, no I/O.
 *
 * A line ends at LF; one CR just before the LF is dropped. A line longer than `maxLineBytes` (not
 * counting LF or CRLF) sets `overflowed` and the decoder stops: lines returned before that are
 * complete requests, everything after is discarded. It never holds more than `maxLineBytes + 1`
 * bytes (the +1 is a CR whose LF has not arrived yet).
 */
export class LineDecoder {
  readonly maxLineBytes: number;
  #pending: Buffer | null = null;
  #overflowed = false;

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  /** True once a line was too long; the decoder then returns nothing more. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** Bytes held for an unterminated line. */
  get buffered(): number {
    return this.#pending?.length ?? 0;
  }

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    if (this.#overflowed) return lines;
    let start = 0;
    const pending = this.#pending;
    if (pending !== null) {
      const lf = chunk.indexOf(LF);
      if (lf === -1) {
        this.#hold(pending, chunk);
        return lines;
      }
      this.#pending = null;
      // Check the size before concatenating, so a huge chunk is never copied.
      if (pending.length + lf > this.maxLineBytes + 1) return this.#overflow(lines);
      this.#emit(Buffer.concat([pending, chunk.subarray(0, lf)]), 0, pending.length + lf, lines);
      start = lf + 1;
    }
    for (;;) {
      const lf = chunk.indexOf(LF, start);
      if (lf === -1) break;
      if (!this.#emit(chunk, start, lf, lines)) return lines;
      start = lf + 1;
    }
    if (start < chunk.length) this.#hold(null, chunk.subarray(start));
    return lines;
  }

  /** End of input: an unterminated last line counts as if an LF followed it. */
  end(): string[] {
    const lines: string[] = [];
    const pending = this.#pending;
    this.#pending = null;
    if (pending !== null && !this.#overflowed) this.#emit(pending, 0, pending.length, lines);
    return lines;
  }

  #emit(buf: Buffer, start: number, end: number, lines: string[]): boolean {
    if (end > start && buf[end - 1] === CR) end--;
    if (end - start > this.maxLineBytes) {
      this.#overflow(lines);
      return false;
    }
    lines.push(buf.toString('utf8', start, end));
    return true;
  }

  #hold(pending: Buffer | null, rest: Buffer): void {
    const size = (pending?.length ?? 0) + rest.length;
    const last = rest[rest.length - 1];
    // maxLineBytes + 1 is allowed only while the extra byte may be the CR of a CRLF.
    if (size > this.maxLineBytes + 1 || (size === this.maxLineBytes + 1 && last !== CR)) {
      this.#overflow([]);
      return;
    }
    // Copy, so a small tail never pins a large socket chunk in memory.
    this.#pending = pending === null ? Buffer.from(rest) : Buffer.concat([pending, rest]);
  }

  #overflow(lines: string[]): string[] {
    this.#overflowed = true;
    this.#pending = null;
    return lines;
  }
}
