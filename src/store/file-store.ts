import { LocalHolders } from './holders.js';
import type { Store } from './store.js';
import { IdLimitError, TakenOverError, type Holder, type ValueStore } from './value-store.js';

/**
 * The embedded store: one process, the state file and its journal (store.ts). A claim is a map
 * update: in one process a takeover is immediate, since the old holder's connection reads nothing
 * after it, so its later writes are refused only as a second line of defence.
 */
export class FileValueStore implements ValueStore {
  readonly description: string;
  readonly file: Store;
  #holders = new LocalHolders();
  #maxIds: number;

  constructor(file: Store, maxIds: number) {
    this.file = file;
    this.description = `file ${file.path}`;
    this.#maxIds = maxIds;
    file.countHeld(() => this.#holders.size);
  }

  get size(): number {
    return this.file.size;
  }

  refuses(id: string): IdLimitError | null {
    return this.#overIdLimit(id);
  }

  claim(id: string, holder: Holder): Promise<number> {
    const refused = this.#overIdLimit(id);
    if (refused !== null) return Promise.reject(refused);
    this.#holders.claim(id, holder);
    // Read now, so the value reflects exactly the requests that arrived before this claim; it is
    // reported once every change so far (a taken-over connection's last values too) is durable.
    const value = this.file.get(id);
    return this.file.sync().then(() => value);
  }

  set(id: string, holder: Holder, value: number): Promise<void> {
    if (!this.#holders.holds(id, holder)) return Promise.reject(new TakenOverError(id));
    // Checked again here: ids are stored by VALUE, and other new ids may have filled the store
    // since this holder's claim.
    const refused = this.#overIdLimit(id);
    if (refused !== null) return Promise.reject(refused);
    return this.file.set(id, value);
  }

  peek(id: string): number | undefined {
    return this.file.has(id) ? this.file.get(id) : undefined;
  }

  release(id: string, holder: Holder): void {
    this.#holders.release(id, holder);
  }

  close(): Promise<void> {
    return this.file.close();
  }

  /** A new id would take the store past its cap (`--max-ids`); known ids always work. */
  #overIdLimit(id: string): IdLimitError | null {
    // The size first: under the cap (nearly always) no lookup is needed, and this runs per VALUE.
    return this.file.size < this.#maxIds || this.file.has(id)
      ? null
      : new IdLimitError(this.#maxIds);
  }
}
