/**
 * Entries per serialized block. A commit re-serializes only the blocks that changed since the
 * last one and joins the rest from cache: with 100k ids and a few hundred clients active, that
 * is a handful of blocks instead of every id.
 */
const BLOCK = 512;

/**
 * The id -> value table, kept in insertion order and serialized block by block. Ids are plain
 * data (a Map, not an object), so `__proto__` is an id like any other.
 */
export class StateTable {
  #position = new Map<string, number>();
  #ids: string[] = [];
  #values: number[] = [];
  #blocks: Array<Buffer | null> = [];

  get size(): number {
    return this.#ids.length;
  }

  get(id: string): number | undefined {
    const at = this.#position.get(id);
    return at === undefined ? undefined : this.#values[at];
  }

  /** Returns false when the value was already `value`. */
  set(id: string, value: number): boolean {
    let at = this.#position.get(id);
    if (at === undefined) {
      at = this.#ids.length;
      this.#position.set(id, at);
      this.#ids.push(id);
      this.#values.push(value);
    } else if (this.#values[at] === value) {
      return false;
    } else {
      this.#values[at] = value;
    }
    this.#blocks[Math.floor(at / BLOCK)] = null;
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
   * One id per line so `cat`, `grep` and `jq` all read it. Ids are [A-Za-z0-9_.-] (checked on
   * the way in), so they need no JSON escaping. parseState's fast path reads this exact layout.
   * Blocks are cached as bytes, so a commit encodes only what changed and copies the rest once.
   */
  serialize(): Buffer {
    if (this.#ids.length === 0) return Buffer.from('{}\n');
    const count = Math.ceil(this.#ids.length / BLOCK);
    const parts: Buffer[] = [OPEN];
    for (let b = 0; b < count; b++) {
      if (b > 0) parts.push(COMMA);
      parts.push((this.#blocks[b] ??= this.#serializeBlock(b)));
    }
    parts.push(CLOSE);
    return Buffer.concat(parts);
  }

  #serializeBlock(b: number): Buffer {
    const end = Math.min(this.#ids.length, (b + 1) * BLOCK);
    const lines: string[] = [];
    for (let i = b * BLOCK; i < end; i++) lines.push(`  "${this.#ids[i]!}": ${this.#values[i]!}`);
    return Buffer.from(lines.join(',\n'));
  }
}

const OPEN = Buffer.from('{\n');
const COMMA = Buffer.from(',\n');
const CLOSE = Buffer.from('\n}\n');
