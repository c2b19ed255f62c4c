import { LocalHolders } from '../holders.js';
import type { Holder } from '../value-store.js';

type Entry = {
  holder: Holder;
  /** The epoch Redis gave this claim; null while the claim is unanswered. */
  epoch: number | null;
  /** The newest claim by someone else announced while this one was unanswered. */
  later: { epoch: number; token: string } | null;
  /** The value last read or stored for the id by this holder, for the live view. */
  value: number | undefined;
};

/**
 * This server's holders, and which claim each of them made. Claims are announced on a pub/sub
 * connection, and their replies arrive on the command connection: the two are not ordered, so an
 * announcement of a claim made elsewhere may arrive before or after our own claim's reply, and may
 * be older or newer than ours. Epochs order them: a holder is taken over only by a claim with a
 * higher epoch than its own; one announced while its own is unanswered is kept and compared when
 * the reply comes.
 */
export class Claims {
  #holders = new LocalHolders();
  #byId = new Map<string, Entry>();

  /** `holder`'s claim is being sent: the local holder it replaces is told at once. */
  begin(id: string, holder: Holder): void {
    this.#holders.claim(id, holder);
    this.#byId.set(id, { holder, epoch: null, later: null, value: undefined });
  }

  /** Redis applied `holder`'s claim with `epoch`, and the id's value was `value`. */
  confirmed(id: string, holder: Holder, epoch: number, value: number): void {
    const entry = this.#entry(id, holder);
    if (entry === undefined) return;
    entry.value = value;
    this.#known(id, entry, epoch);
  }

  /**
   * `holder`'s claim failed: it may or may not have been applied, so any claim announced since it
   * was sent is taken to be newer.
   */
  failed(id: string, holder: Holder): void {
    const entry = this.#entry(id, holder);
    if (entry !== undefined && entry.epoch === null) this.#known(id, entry, 0);
  }

  /** A claim of `id` with `epoch` and `token` was announced (by any server, this one included). */
  announced(id: string, epoch: number, token: string): void {
    const entry = this.#byId.get(id);
    if (entry === undefined || entry.holder.token === token) return;
    if (entry.epoch !== null) {
      if (epoch > entry.epoch) this.#takeOver(id, token);
    } else if (entry.later === null || epoch > entry.later.epoch) {
      entry.later = { epoch, token };
    }
  }

  /** Redis refused `holder`'s write: `token` holds the id now. */
  refused(id: string, holder: Holder, token: string): void {
    if (this.#entry(id, holder) !== undefined) this.#takeOver(id, token);
  }

  /** `holder`'s write of `value` was acknowledged. */
  stored(id: string, holder: Holder, value: number): void {
    const entry = this.#entry(id, holder);
    if (entry !== undefined) entry.value = value;
  }

  release(id: string, holder: Holder): void {
    this.#holders.release(id, holder);
    if (this.#entry(id, holder) !== undefined) this.#byId.delete(id);
  }

  /** The value last read or stored for `id` by its local holder; undefined if none holds it. */
  peek(id: string): number | undefined {
    return this.#byId.get(id)?.value;
  }

  /** Ids held here. */
  get size(): number {
    return this.#byId.size;
  }

  #entry(id: string, holder: Holder): Entry | undefined {
    const entry = this.#byId.get(id);
    return entry?.holder === holder ? entry : undefined;
  }

  #known(id: string, entry: Entry, epoch: number): void {
    entry.epoch = epoch;
    if (entry.later !== null && entry.later.epoch > epoch) this.#takeOver(id, entry.later.token);
    entry.later = null;
  }

  #takeOver(id: string, token: string): void {
    this.#byId.delete(id);
    this.#holders.claimedElsewhere(id, token);
  }
}
