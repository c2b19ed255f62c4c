import { isUtf8 } from 'node:buffer';

const CR = 0x0d;

/**
 * Splits a byte stream into lines. Pure: bytes in, strings out, no I/O.
 *
 * Lines come back as byte strings (latin1: one char per byte, U+0000-U+00FF), not decoded UTF-8:
 * every valid request is ASCII, so parsing is unaffected, while an echo can count bytes and the
 * message log can record exactly what arrived, invalid UTF-8 included (see `lineText`).
 *
 * A line ends at LF; one CR just before the LF is dropped. A line longer than `maxLineBytes` (not
 * counting LF or CRLF) sets `overflowed` and the decoder stops: lines returned before that are
 * complete requests, everything after is discarded. Across chunks it holds at most
 * `maxLineBytes + 1` bytes of an unfinished line (the +1 is a CR whose LF has not arrived yet).
 *
 * Lines can be taken one at a time (`write`, then `next` until null), so a reader that must stop
 * mid-chunk (its peer is not taking replies) leaves the rest of the chunk here, undecoded.
 */
export class LineDecoder {
  readonly maxLineBytes: number;
  #chunk: Buffer | null = null; // the chunk being taken apart, from #start on
  // The chunk as a byte string, made at its first line: one conversion a chunk, not one a line (a
  // flood's reads hold ~8 lines each; flood 50×16 took 4.9 µs of the event loop a reply, not 5.3).
  #text: string | null = null;
  #start = 0;
  #partial: Buffer | null = null; // the start of a line whose LF has not arrived
  #overflowed = false;

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  /** True once a line was too long; the decoder then returns nothing more. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** Bytes held for an unterminated line (not counting a chunk still being taken apart). */
  get buffered(): number {
    return this.#partial?.length ?? 0;
  }

  /** Adds a chunk; take its lines with `next`. */
  write(chunk: Buffer): void {
    if (this.#overflowed) return;
    this.#chunk =
      this.#chunk === null ? chunk : Buffer.concat([this.#chunk.subarray(this.#start), chunk]);
    this.#start = 0;
    this.#text = null;
  }

  /** The next complete line, or null when the chunks so far hold no more (or after overflow). */
  next(): string | null {
    const chunk = this.#chunk;
    if (chunk === null || this.#overflowed) return null;
    const start = this.#start;
    const text = (this.#text ??= chunk.toString('latin1'));
    const lf = text.indexOf('\n', start);
    if (lf === -1) {
      this.#chunk = null;
      this.#text = null;
      if (start < chunk.length) this.#hold(chunk.subarray(start));
      return null;
    }
    this.#start = lf + 1;
    const partial = this.#partial;
    if (partial === null) return this.#textLine(text, start, lf);
    this.#partial = null;
    // Check the size before concatenating, so a huge chunk is never copied.
    if (partial.length + lf - start > this.maxLineBytes + 1) return this.#overflow();
    const line = Buffer.concat([partial, chunk.subarray(start, lf)]);
    return this.#line(line, 0, line.length);
  }

  /** Every line `chunk` completes: `write` then `next` until null. */
  push(chunk: Buffer): string[] {
    this.write(chunk);
    const lines: string[] = [];
    for (let line = this.next(); line !== null; line = this.next()) lines.push(line);
    return lines;
  }

  /** End of input: an unterminated last line counts as if an LF followed it. */
  end(): string[] {
    const lines = this.#chunk === null ? [] : this.push(Buffer.alloc(0));
    const partial = this.#partial;
    this.#partial = null;
    if (partial !== null && !this.#overflowed) {
      const line = this.#line(partial, 0, partial.length);
      if (line !== null) lines.push(line);
    }
    return lines;
  }

  /** As #line, for a line inside the chunk's byte string. */
  #textLine(text: string, start: number, end: number): string | null {
    if (end > start && text.charCodeAt(end - 1) === CR) end--;
    if (end - start > this.maxLineBytes) return this.#overflow();
    return text.slice(start, end);
  }

  #line(buf: Buffer, start: number, end: number): string | null {
    if (end > start && buf[end - 1] === CR) end--;
    if (end - start > this.maxLineBytes) return this.#overflow();
    return buf.toString('latin1', start, end);
  }

  #hold(rest: Buffer): void {
    const partial = this.#partial;
    const size = (partial?.length ?? 0) + rest.length;
    // maxLineBytes + 1 is allowed only while the extra byte may be the CR of a CRLF.
    if (size > this.maxLineBytes + 1 || (size === this.maxLineBytes + 1 && rest.at(-1) !== CR)) {
      this.#overflow();
      return;
    }
    // Copy, so a small tail never pins a large socket chunk in memory.
    this.#partial = partial === null ? Buffer.from(rest) : Buffer.concat([partial, rest]);
  }

  #overflow(): null {
    this.#overflowed = true;
    this.#partial = null;
    this.#chunk = null;
    this.#text = null;
    return null;
  }
}

const NON_ASCII_RE = /[\u0080-\uffff]/;

/**
 * A decoded line (a byte string) as text for people: its UTF-8 reading, and `raw`, the bytes in
 * base64, only when they are not valid UTF-8 (the text then shows U+FFFD where they were), so a
 * log record always gives back exactly the bytes received. Pure; ASCII costs one regex test.
 */
export function lineText(bytes: string): { text: string; raw: string | null } {
  if (!NON_ASCII_RE.test(bytes)) return { text: bytes, raw: null };
  const buf = Buffer.from(bytes, 'latin1');
  return { text: buf.toString('utf8'), raw: isUtf8(buf) ? null : buf.toString('base64') };
}
