import { StringDecoder } from 'node:string_decoder';
import type { FileHandle } from 'node:fs/promises';
import { StateFileError } from './state-errors.js';
import { JsonStateParser, type Resume } from './state-json.js';
import { StateTable } from './state-table.js';

export { StateFileError };

/**
 * Bytes read from the state file at a time. The file is never one string: at 7.25M ids it is
 * 537 MB, past V8's longest string (~512 MiB), and reading it whole made it unloadable.
 */
export const READ_CHUNK_BYTES = 1024 * 1024;

// The exact layout StateTable.serialize writes. Anything else (a file edited by hand, reformatted
// by jq) takes the general JSON path, which accepts the same data, only more slowly.
const ENTRY_RE = /^ {2}"([A-Za-z0-9_.-]{1,64})": {1,2}(0|[1-9][0-9]?)(,?)$/;
/** Longer than any line of our layout (`  "<64 chars>":  99,`): a longer one is not ours. */
const MAX_OWN_LINE = 128;

// Where the own-layout reader is, named as the JSON parser's state at the same point, so that
// on the first line that is not ours the JSON parser takes over from there with no second pass.
type Own = Resume;

const NEWLINE = 0x0a;
const NO_BYTES = Buffer.alloc(0);

/**
 * Parses the state file incrementally: bytes in, in pieces split anywhere, a StateTable out. Pure.
 * Our own layout (one entry per line) is read a line at a time from the bytes as they are: runs of
 * entries exactly as StateTable writes them are copied in whole (StateTable.appendLines), other
 * spacings of it go through ENTRY_RE; from the first line that is not ours, the rest is decoded
 * as UTF-8 (as `readFile(path, 'utf8')` would: a character split between pieces is joined, invalid
 * bytes become U+FFFD) and the general JSON parser continues. Holds at most one line.
 */
export class StateParser {
  #table: StateTable;
  #own: Own = 'start';
  #json: JsonStateParser | null = null;
  #decoder = new StringDecoder('utf8');
  #pending: Buffer = NO_BYTES;
  #line = 1;

  /** `capacityBytes`: the file's size if known (see StateTable). */
  constructor(capacityBytes?: number) {
    this.#table = new StateTable(capacityBytes);
  }

  /** The next piece of the file. Not kept: the caller may reuse it once this returns. */
  push(bytes: Buffer): void {
    if (this.#json !== null) return this.#json.push(this.#decoder.write(bytes));
    let from = 0;
    if (this.#pending.length > 0) {
      // The line begun in the last piece, completed from this one: read on its own.
      const nl = bytes.indexOf(NEWLINE);
      if (nl === -1) return this.#wait(Buffer.concat([this.#pending, bytes]));
      const line = Buffer.concat([this.#pending, bytes.subarray(0, nl + 1)]);
      this.#pending = NO_BYTES;
      from = nl + 1;
      if (!this.#lines(line, 0, line.length)) return this.push(bytes.subarray(from));
    }
    const end = bytes.lastIndexOf(NEWLINE) + 1; // whole lines end here; the rest waits for more
    if (end > from && !this.#lines(bytes, from, end)) return;
    this.#wait(Buffer.from(bytes.subarray(Math.max(from, end)))); // a copy: see above
  }

  /** The table; throws StateFileError naming the first problem, so an operator can find it. */
  end(): StateTable {
    if (this.#json === null && this.#own === 'done' && this.#pending.length === 0)
      return this.#table;
    if (this.#json === null) this.#handOff(this.#pending);
    this.#json!.push(this.#decoder.end());
    return this.#json!.end();
  }

  /**
   * Reads the whole lines bytes[from, end) of our layout. At the first line that is not ours, hands
   * everything from it to the end of `bytes` to the JSON parser and returns false.
   */
  #lines(bytes: Buffer, from: number, end: number): boolean {
    while (from < end) {
      if (this.#own === 'key-or-close' || this.#own === 'key') {
        // Runs of entries in our exact layout are copied into the table as they are.
        const run = this.#table.appendLines(bytes, from, end);
        if (run.lines > 0) {
          from = run.at;
          this.#line += run.lines;
          this.#own = run.comma ? 'key' : 'comma-or-close';
          continue;
        }
      }
      const nl = bytes.indexOf(NEWLINE, from);
      // latin1: a line with any other byte than ASCII is not ours, and fails as latin1 too.
      if (!this.#ownLine(bytes.toString('latin1', from, nl))) {
        this.#handOff(bytes.subarray(from));
        return false;
      }
      from = nl + 1;
      this.#line++;
    }
    return true;
  }

  /** Keeps a line begun but not ended; one longer than any of ours is not ours. */
  #wait(rest: Buffer): void {
    if (rest.length > MAX_OWN_LINE) this.#handOff(rest);
    else this.#pending = rest;
  }

  /** Whether `line` continues our layout (and if so, takes its entry). */
  #ownLine(line: string): boolean {
    const own = this.#own;
    if (own === 'start') {
      if (line !== '{') return false;
      this.#own = 'key-or-close';
      return true;
    }
    if (line === '}' && (own === 'key-or-close' || own === 'comma-or-close')) {
      this.#own = 'done';
      return true;
    }
    if (own !== 'key-or-close' && own !== 'key') return false;
    const m = ENTRY_RE.exec(line);
    if (m === null) return false;
    this.#table.set(m[1]!, Number(m[2]));
    // Every entry but the last ends with a comma.
    this.#own = m[3] === ',' ? 'key' : 'comma-or-close';
    return true;
  }

  #handOff(rest: Buffer): void {
    this.#pending = NO_BYTES;
    this.#json = new JsonStateParser(this.#table, this.#own, this.#line);
    this.#json.push(this.#decoder.write(rest));
  }
}

/** Parses the state file's whole text (see StateParser). */
export function parseState(text: string): StateTable {
  const parser = new StateParser();
  parser.push(Buffer.from(text));
  return parser.end();
}

/** Reads an open state file in chunks of `chunkBytes` through the parser. */
export async function readState(
  file: Pick<FileHandle, 'read'>,
  chunkBytes = READ_CHUNK_BYTES,
  sizeBytes?: number,
): Promise<StateTable> {
  // A little room over the file's size, for ids added after the start before the first doubling.
  const parser = new StateParser(
    sizeBytes === undefined ? undefined : sizeBytes + (sizeBytes >> 4),
  );
  const buffer = Buffer.allocUnsafe(chunkBytes);
  for (;;) {
    const { bytesRead } = await file.read(buffer, 0, chunkBytes, null);
    if (bytesRead === 0) break;
    parser.push(buffer.subarray(0, bytesRead));
  }
  return parser.end();
}

/** The file's text for these entries (see StateTable.serialize). */
export function serializeState(entries: Iterable<[string, number]>): string {
  const table = new StateTable();
  for (const [id, value] of entries) table.set(id, value);
  return table.serialize().toString();
}
