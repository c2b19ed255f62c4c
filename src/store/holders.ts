import type { Holder } from './value-store.js';

/**
 * This server's holder of each id. Both stores use it to tell a local holder at once when its id
 * is claimed here; the Redis store also tells it when a claim made on another server is announced.
 */
export class LocalHolders {
  #byId = new Map<string, Holder>();

  /** Makes `holder` the local holder of `id`; the one it replaces, if any, is taken over. */
  claim(id: string, holder: Holder): void {
    const previous = this.#byId.get(id);
    this.#byId.set(id, holder);
    if (previous !== undefined && previous !== holder) previous.takenOver();
  }

  /** A claim made elsewhere (token `token`) for `id`: a local holder with another token is taken over. */
  claimedElsewhere(id: string, token: string): void {
    const local = this.#byId.get(id);
    if (local === undefined || local.token === token) return;
    this.#byId.delete(id);
    local.takenOver();
  }

  /** Whether `holder` is the local holder of `id` (its claim was not taken over here). */
  holds(id: string, holder: Holder): boolean {
    return this.#byId.get(id) === holder;
  }

  /** `holder` is gone; a newer local holder of the same id stays. */
  release(id: string, holder: Holder): void {
    if (this.#byId.get(id) === holder) this.#byId.delete(id);
  }

  get size(): number {
    return this.#byId.size;
  }
}
