import { EntryRun, HASH_SEED, hashId, MAX_RUN_LINES, scanEntries } from './state-lines.js';

const OPEN = '{\n';
const SEPARATOR = ',\n';
const CLOSE = '\n}\n';
const SPACE = 0x20;
const ZERO = 0x30;
const QUOTE = 0x22;
/** `": ` between an id and its value field; `  "` before an id. */
const AFTER_ID = 3;
const BEFORE_ID = 3;
/** A free slot in the index. */
const FREE = -1;
/** The index grows (doubles) past this share of its slots in use: linear probing stays short. */
const MAX_LOAD = 0.7;
const MIN_SLOTS = 16;
/** appendLines' index of one run's ids: a power of two, at least twice MAX_RUN_LINES. */
const RUN_SLOTS = 2 * MAX_RUN_LINES;
const RUN_MASK = RUN_SLOTS - 1;
/**
 * Ids whose value offsets are remembered by their strings (see `#recent`): more than the 10,000
 * clients of the spec load, and far fewer than the ids a large table holds.
 */
const RECENT_IDS = 16_384;

/** Whether bytes[a, +length) and bytes[b, +length) are the same. */
function sameBytes(bytes: Uint8Array, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

/**
 * The id -> value table, kept as the state file's bytes. Every value has a two-byte field at a
 * fixed offset (` 7` or `42`; JSON allows the space), so a change rewrites two bytes in place and a
 * checkpoint costs one copy of the file, however many ids there are.
 *
 * The ids live only in those bytes: the index is an open-addressing hash table of typed arrays
 * (each entry's value offset and hash, 12 bytes a slot), not a Map of strings. At 10M ids of 64
 * characters a Map held every id a second time as a string object (plus the entry), about 1.7 GB
 * on top of the 740 MB file, and the garbage collector walked those 10M objects again and again
 * while the file loaded (55 s). Ids are plain data, so `__proto__` is an id like any other.
 */
export class StateTable {
  #bytes: Buffer;
  #length = 0;
  #size = 0;
  /** Per slot: the byte offset of the entry's value field, or FREE. */
  #at: Float64Array;
  /** Per slot: the entry's hash, so most probes compare no bytes. */
  #hash: Uint32Array;
  #mask: number;
  #limit: number;
  /** Reused by appendLines: the run, and its own small index of the ids in it (line + 1, 0 free). */
  #run = new EntryRun();
  #runSlots = new Int32Array(RUN_SLOTS);
  /**
   * The value offsets of recently used ids, by id. A connection passes the same string for every
   * VALUE, and V8 keeps a string's hash, so a hit neither hashes its characters nor probes and
   * compares bytes (the probe was 4% of a flood's busy time). Offsets never move. Cleared when
   * full, so it never holds a large table's ids a second time.
   */
  #recent = new Map<string, number>();

  readonly #seed: number;

  /**
   * `capacityBytes`: the size the file is expected to reach (a loader passes the file's size), so
   * a large table is allocated once instead of doubling past it: at 7M ids the file is ~540 MB and
   * doubling would briefly hold 1.6 GB. `seed`: of the id hash (see HASH_SEED).
   */
  constructor(capacityBytes = 4096, seed = HASH_SEED) {
    this.#seed = seed;
    this.#bytes = Buffer.alloc(Math.max(capacityBytes, 16));
    this.#at = new Float64Array(MIN_SLOTS).fill(FREE);
    this.#hash = new Uint32Array(MIN_SLOTS);
    this.#mask = MIN_SLOTS - 1;
    this.#limit = Math.floor(MIN_SLOTS * MAX_LOAD);
  }

  get size(): number {
    return this.#size;
  }

  get(id: string): number | undefined {
    const at =
      this.#recent.get(id) ?? this.#at[this.#slotOf(id, 0, id.length, hashId(id, this.#seed))]!;
    return at === FREE ? undefined : this.#readValue(at);
  }

  /** Returns false when the value was already `value`. */
  set(id: string, value: number): boolean {
    let at = this.#recent.get(id);
    if (at === undefined) {
      const hash = hashId(id, this.#seed);
      const slot = this.#slotOf(id, 0, id.length, hash);
      at = this.#at[slot]!;
      if (at === FREE) {
        at = this.#at[slot] = this.#append(id, value);
        this.#hash[slot] = hash;
        if (++this.#size > this.#limit) this.#grow();
        this.#remember(id, at);
        return true;
      }
      this.#remember(id, at);
    }
    if (this.#readValue(at) === value) return false;
    this.#writeValue(at, value);
    return true;
  }

  /** The entries in the order they were first set (the file's order). */
  *entries(): IterableIterator<[string, number]> {
    const bytes = this.#bytes;
    // Each entry is `  "<id>": <2-byte value>`, then `,\n` or the closing `\n}\n`.
    let start = OPEN.length + BEFORE_ID;
    for (let n = 0; n < this.#size; n++) {
      const end = bytes.indexOf(QUOTE, start);
      const at = end + AFTER_ID;
      yield [bytes.toString('latin1', start, end), this.#readValue(at)];
      start = at + 2 + SEPARATOR.length + BEFORE_ID;
    }
  }

  [Symbol.iterator](): IterableIterator<[string, number]> {
    return this.entries();
  }

  *values(): IterableIterator<number> {
    for (const [, value] of this.entries()) yield value;
  }

  /**
   * The file's bytes: one id per line so `cat`, `grep` and `jq` all read it. A copy, because the
   * table keeps changing while a write of this snapshot is in flight. Ids are [A-Za-z0-9_.-]
   * (checked on the way in), so they need no JSON escaping.
   */
  serialize(): Buffer {
    if (this.#size === 0) return Buffer.from('{}\n');
    return Buffer.from(this.#bytes.subarray(0, this.#length));
  }

  /**
   * Loading a file in our own layout (state-lines.ts): takes the lines of `bytes` (the file as
   * read) from `from` (a line start) to `end` (just after a newline) that are entries exactly as
   * `serialize` writes them, for ids not in the table yet, and copies them in as they are: one copy
   * for the run, no decoding, regular expression, id string or write per line. Stops before a
   * repeated id (the caller sets it the general way) and wherever scanEntries stops. Returns where
   * it stopped (a line start), the lines taken, and whether the last one taken ended in a comma.
   */
  appendLines(
    bytes: Buffer,
    from: number,
    end: number,
  ): { at: number; lines: number; comma: boolean } {
    this.#runSlots.fill(0);
    const run = scanEntries(
      bytes,
      from,
      end,
      this.#run,
      (idStart, idLength, hash, n) => this.#isNewId(bytes, idStart, idLength, hash, n),
      this.#seed,
    );
    if (run.lines === 0) return { at: from, lines: 0, comma: false };
    const empty = this.#size === 0;
    // The run goes where #append would put its first entry, after `{\n` or the last entry's `,\n`.
    const base = empty ? OPEN.length : this.#length - CLOSE.length + SEPARATOR.length;
    const bodyEnd = run.at - (run.comma ? 2 : 1); // the last `,` and newline off
    const bodyLength = bodyEnd - from;
    this.#reserve(base + bodyLength + CLOSE.length);
    this.#bytes.write(empty ? OPEN : SEPARATOR, base - OPEN.length, 'latin1');
    bytes.copy(this.#bytes, base, from, bodyEnd);
    this.#length = base + bodyLength + this.#bytes.write(CLOSE, base + bodyLength, 'latin1');
    for (let n = 0; n < run.lines; n++) {
      // Every id of the run is new (checked as it was scanned): its slot is the first free one.
      const hash = run.hash[n]!;
      const slot = this.#freeSlot(hash);
      this.#at[slot] = base + run.value[n]! - from;
      this.#hash[slot] = hash;
      if (++this.#size > this.#limit) this.#grow();
    }
    return { at: run.at, lines: run.lines, comma: run.comma };
  }

  /** For appendLines: the id at bytes[idStart, +idLength) is in neither the table nor the run. */
  #isNewId(bytes: Buffer, idStart: number, idLength: number, hash: number, n: number): boolean {
    if (this.#at[this.#slotOf(bytes, idStart, idLength, hash)] !== FREE) return false;
    const run = this.#run;
    const slots = this.#runSlots;
    for (let slot = hash & RUN_MASK; ; slot = (slot + 1) & RUN_MASK) {
      const line = slots[slot]!;
      if (line === 0) {
        slots[slot] = n + 1;
        return true;
      }
      const m = line - 1;
      if (run.hash[m] !== hash || run.idLength[m] !== idLength) continue;
      const other = run.lineStart[m]! + BEFORE_ID;
      if (sameBytes(bytes, idStart, other, idLength)) return false;
    }
  }

  /**
   * The slot holding the id id[start, +length) (a whole id string, or one inside the bytes of a
   * file being loaded), or the free slot where it would go.
   */
  #slotOf(id: string | Buffer, start: number, length: number, hash: number): number {
    const at = this.#at;
    const hashes = this.#hash;
    const mask = this.#mask;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const offset = at[slot]!;
      if (offset === FREE || (hashes[slot] === hash && this.#isIdAt(offset, id, start, length)))
        return slot;
    }
  }

  /** The first free slot from `hash` on, for an id known not to be in the table. */
  #freeSlot(hash: number): number {
    let slot = hash & this.#mask;
    while (this.#at[slot] !== FREE) slot = (slot + 1) & this.#mask;
    return slot;
  }

  /** Whether the entry whose value field is at `offset` has the id id[from, +length). */
  #isIdAt(offset: number, id: string | Buffer, from: number, length: number): boolean {
    const bytes = this.#bytes;
    const start = offset - AFTER_ID - length;
    // Ids hold no quote: the byte before a matching id must be the quote that opens it.
    if (bytes[start - 1] !== QUOTE) return false;
    if (typeof id !== 'string')
      return bytes.compare(id, from, from + length, start, start + length) === 0;
    for (let i = 0; i < length; i++) if (bytes[start + i] !== id.charCodeAt(from + i)) return false;
    return true;
  }

  #remember(id: string, at: number): void {
    if (this.#recent.size >= RECENT_IDS) this.#recent.clear();
    this.#recent.set(id, at);
  }

  /** Appends the entry's bytes; returns the offset of its value field. */
  #append(id: string, value: number): number {
    const head = `${this.#size === 0 ? OPEN : SEPARATOR}  "${id}": `;
    // The new entry overwrites the closing brace, which is written again after it.
    const start = this.#size === 0 ? 0 : this.#length - CLOSE.length;
    this.#reserve(start + head.length + 2 + CLOSE.length);
    this.#bytes.write(head, start, 'latin1');
    const offset = start + head.length;
    this.#writeValue(offset, value);
    this.#length = offset + 2 + this.#bytes.write(CLOSE, offset + 2, 'latin1');
    return offset;
  }

  /** Twice the slots, every entry placed again by its kept hash (no id is read). */
  #grow(): void {
    const oldAt = this.#at;
    const oldHash = this.#hash;
    const slots = oldAt.length * 2;
    this.#at = new Float64Array(slots).fill(FREE);
    this.#hash = new Uint32Array(slots);
    this.#mask = slots - 1;
    this.#limit = Math.floor(slots * MAX_LOAD);
    for (let i = 0; i < oldAt.length; i++) {
      const offset = oldAt[i]!;
      if (offset === FREE) continue;
      const hash = oldHash[i]!;
      const slot = this.#freeSlot(hash);
      this.#at[slot] = offset;
      this.#hash[slot] = hash;
    }
  }

  #readValue(offset: number): number {
    const tens = this.#bytes[offset]!;
    return (tens === SPACE ? 0 : (tens - ZERO) * 10) + this.#bytes[offset + 1]! - ZERO;
  }

  #writeValue(offset: number, value: number): void {
    this.#bytes[offset] = value < 10 ? SPACE : ZERO + Math.floor(value / 10);
    this.#bytes[offset + 1] = ZERO + (value % 10);
  }

  #reserve(bytes: number): void {
    if (bytes <= this.#bytes.length) return;
    const grown = Buffer.alloc(Math.max(bytes, this.#bytes.length * 2));
    this.#bytes.copy(grown, 0, 0, this.#length);
    this.#bytes = grown;
  }
}
