import type { Journal } from './store.js';
import type { Holder, ValueStore } from './value-store.js';

/**
 * A store whose claims and writes are answered only once the message log holds their request
 * lines on disk as well (protocol.md: the request line of every OK is in the log). The file store
 * flushes the log with each group commit itself; this does the same for a store that does not
 * write the log (Redis). Requests read in one turn of the event loop share one flush.
 */
export class LoggedStore implements ValueStore {
  readonly #inner: ValueStore;
  readonly #log: Journal;
  #flush: Promise<void> | null = null;

  constructor(inner: ValueStore, log: Journal) {
    this.#inner = inner;
    this.#log = log;
  }

  get description(): string {
    return this.#inner.description;
  }

  get size(): number {
    return this.#inner.size;
  }

  claim(id: string, holder: Holder): Promise<number> {
    return Promise.all([this.#inner.claim(id, holder), this.#logged()]).then(([value]) => value);
  }

  set(id: string, holder: Holder, value: number): Promise<void> {
    return Promise.all([this.#inner.set(id, holder, value), this.#logged()]).then(() => {});
  }

  peek(id: string): number | undefined {
    return this.#inner.peek(id);
  }

  release(id: string, holder: Holder): void {
    this.#inner.release(id, holder);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /** One log flush for every request of this turn, started once the turn's lines are queued. */
  #logged(): Promise<void> {
    this.#flush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.#flush = null;
      return this.#log.flush();
    });
    return this.#flush;
  }
}
