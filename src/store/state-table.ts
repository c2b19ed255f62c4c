const OPEN = '{\n';
const SEPARATOR = ',\n';
const CLOSE = '\n}\n';
const SPACE = 0x20;
const ZERO = 0x30;

/**
 * The id -> value table, kept as the state file's bytes. Every value has a two-byte field at a
 * fixed offset (` 7` or `42`; JSON allows the space), so a change rewrites two bytes in place and a
 * commit costs one copy of the file, however many ids there are: with 18,000 active clients,
 * re-serializing every id for every commit took ~2 ms of the event loop each time.
 * Ids are plain data (a Map, not an object), so `__proto__` is an id like any other.
 */
export class StateTable {
  #position = new Map<string, number>();
  #ids: string[] = [];
  #values: number[] = [];
  #offsets: number[] = []; // byte offset of each value's two-byte field
  #bytes: Buffer;
  #length = 0;

  /**
   * `capacityBytes`: the size the file is expected to reach (a loader passes the file's size), so
   * a large table is allocated once instead of doubling past it: at 7M ids the file is ~540 MB and
   * doubling would briefly hold 1.6 GB.
   */
  constructor(capacityBytes = 4096) {
    this.#bytes = Buffer.alloc(Math.max(capacityBytes, 16));
  }

  get size(): number {
    return this.#ids.length;
  }

  get(id: string): number | undefined {
    const at = this.#position.get(id);
    return at === undefined ? undefined : this.#values[at];
  }

  /** Returns false when the value was already `value`. */
  set(id: string, value: number): boolean {
    const at = this.#position.get(id);
    if (at === undefined) {
      this.#append(id, value);
      return true;
    }
    if (this.#values[at] === value) return false;
    this.#values[at] = value;
    this.#writeValue(this.#offsets[at]!, value);
    return true;
  }

  *entries(): IterableIterator<[string, number]> {
    for (let i = 0; i < this.#ids.length; i++) yield [this.#ids[i]!, this.#values[i]!];
  }

  [Symbol.iterator](): IterableIterator<[string, number]> {
    return this.entries();
  }

  values(): IterableIterator<number> {
    return this.#values.values();
  }

  /**
   * The file's bytes: one id per line so `cat`, `grep` and `jq` all read it. A copy, because the
   * table keeps changing while a write of this snapshot is in flight. Ids are [A-Za-z0-9_.-]
   * (checked on the way in), so they need no JSON escaping.
   */
  serialize(): Buffer {
    if (this.#ids.length === 0) return Buffer.from('{}\n');
    return Buffer.from(this.#bytes.subarray(0, this.#length));
  }

  #append(id: string, value: number): void {
    const head = `${this.#ids.length === 0 ? OPEN : SEPARATOR}  "${id}": `;
    // The new entry overwrites the closing brace, which is written again after it.
    const start = this.#ids.length === 0 ? 0 : this.#length - CLOSE.length;
    this.#reserve(start + head.length + 2 + CLOSE.length);
    this.#bytes.write(head, start, 'latin1');
    const offset = start + head.length;
    this.#writeValue(offset, value);
    this.#length = offset + 2 + this.#bytes.write(CLOSE, offset + 2, 'latin1');
    this.#position.set(id, this.#ids.length);
    this.#ids.push(id);
    this.#values.push(value);
    this.#offsets.push(offset);
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
