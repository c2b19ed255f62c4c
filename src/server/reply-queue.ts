type Slot = { line: string | null };

/**
 * Keeps replies in request order. A reply that is ready at once (PONG) is written straight away
 * unless an earlier one is still waiting for the disk (OK n); then it waits its turn. Each call of
 * `write` gets every reply that became sendable together, so they leave in one socket write.
 */
export class ReplyQueue {
  readonly #write: (lines: string[]) => void;
  #slots: Slot[] = [];
  #drainQueued = false;

  constructor(write: (lines: string[]) => void) {
    this.#write = write;
  }

  /** Replies not yet handed to `write`. */
  get waiting(): number {
    return this.#slots.length;
  }

  push(reply: string | Promise<string>): void {
    if (typeof reply === 'string') {
      if (this.#slots.length === 0) this.#write([reply]);
      else this.#slots.push({ line: reply });
      return;
    }
    const slot: Slot = { line: null };
    this.#slots.push(slot);
    void reply.then((line) => {
      slot.line = line;
      // One commit settles many slots in a row of microtasks; draining once after all of them
      // (nextTick runs when the microtask queue is empty) sends them in one write, not one each.
      if (this.#drainQueued) return;
      this.#drainQueued = true;
      process.nextTick(() => {
        this.#drainQueued = false;
        this.#drain();
      });
    });
  }

  #drain(): void {
    const ready: string[] = [];
    let i = 0;
    for (; i < this.#slots.length; i++) {
      const line = this.#slots[i]!.line;
      if (line === null) break;
      ready.push(line);
    }
    if (i === 0) return;
    this.#slots.splice(0, i);
    this.#write(ready);
  }
}
