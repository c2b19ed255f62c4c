import type { Journal, StoreOptions } from './store.js';
import { IdLimitError, TakenOverError, type Holder, type ValueStore } from './value-store.js';

/** The writes read in one turn of the event loop, and the one log flush they share. */
type Turn = { writes: Array<Promise<unknown>>; done: Promise<void> };

const ignore = () => {};

/** A refusal the store gives by design, not a failure to store: the disk or Redis was fine. */
function refusedByDesign(err: unknown): boolean {
  return err instanceof TakenOverError || err instanceof IdLimitError;
}

/**
 * A store whose claims and writes are answered only once the message log holds their request
 * lines on disk as well (protocol.md: the request line of every OK is in the log). The file store
 * flushes the log with each group commit itself; this does the same for a store that does not
 * write the log (Redis). Requests read in one turn of the event loop share one flush, and count
 * as one commit for `onCommit` (so /readyz and the commit metrics see Redis as they see the disk).
 */
export class LoggedStore implements ValueStore {
  readonly #inner: ValueStore;
  readonly #log: Journal;
  readonly #onCommit: StoreOptions['onCommit'];
  #turn: Turn | null = null;

  constructor(inner: ValueStore, log: Journal, onCommit?: StoreOptions['onCommit']) {
    this.#inner = inner;
    this.#log = log;
    this.#onCommit = onCommit;
  }

  get description(): string {
    return this.#inner.description;
  }

  get size(): number {
    return this.#inner.size;
  }

  claim(id: string, holder: Holder): Promise<number> {
    return this.#logged(this.#inner.claim(id, holder));
  }

  set(id: string, holder: Holder, value: number): Promise<void> {
    return this.#logged(this.#inner.set(id, holder, value));
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

  /**
   * Settles as the write did, once the whole turn is settled and reported: like the file store's
   * group commit, every request of a turn is answered after `onCommit` has seen the turn, so a
   * client told ERR STORAGE (or OK) finds /readyz already saying so.
   */
  #logged<T>(write: Promise<T>): Promise<T> {
    const turn = (this.#turn ??= this.#startTurn());
    turn.writes.push(write);
    write.catch(ignore); // handled once the turn settles (it may reject before then)
    return turn.done.then(() => write);
  }

  /** One log flush for every request of this turn, started once the turn's lines are queued. */
  #startTurn(): Turn {
    const started = performance.now();
    const writes: Array<Promise<unknown>> = [];
    const done = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      this.#turn = null;
      const [flushed, ...written] = await Promise.allSettled([this.#log.flush(), ...writes]);
      const ok =
        flushed!.status === 'fulfilled' &&
        written.every((r) => r.status === 'fulfilled' || refusedByDesign(r.reason));
      this.#onCommit?.(performance.now() - started, writes.length, ok);
      if (flushed!.status === 'rejected') throw flushed!.reason;
    });
    return { writes, done };
  }
}
