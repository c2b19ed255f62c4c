import { formatReply } from '../protocol/replies.js';
import type { Pending } from './pending.js';

/** A reply in request order: its line once known, and until then what it waits for. */
type Slot = { line: string | null; pending: Pending | null };
/**
 * Replies in a row waiting on one promise: settled by one reaction. Most groups of a store whose
 * calls each have their own promise (Redis) hold one reply, so that one costs no array.
 */
type Group = { after: Promise<unknown>; first: Slot; more: Slot[] | null };

const SETTLED = Promise.resolve();

/**
 * Keeps replies in request order. A reply that is ready at once (PONG) is written straight away
 * unless an earlier one is still waiting for the disk (OK n); then it waits its turn. Each call of
 * `write` gets every reply that became sendable together, so they leave in one socket write.
 */
export class ReplyQueue {
  readonly #write: (lines: string[]) => void;
  #slots: Slot[] = [];
  #group: Group | null = null; // the last group, joined by a Pending that waits on its promise
  #drainQueued = false;

  constructor(write: (lines: string[]) => void) {
    this.#write = write;
  }

  /** Replies not yet handed to `write`. */
  get waiting(): number {
    return this.#slots.length;
  }

  push(reply: string | Pending): void {
    if (typeof reply === 'string') {
      if (this.#slots.length === 0) this.#write([reply]);
      else this.#slots.push({ line: reply, pending: null });
      return;
    }
    const slot: Slot = { line: null, pending: reply };
    this.#slots.push(slot);
    // The VALUEs a peer sends in one read all wait on the same group commit: they join one group.
    const group = this.#group;
    if (group !== null && group.after === reply.after) {
      (group.more ??= []).push(slot);
      return;
    }
    const joined: Group = { after: reply.after, first: slot, more: null };
    this.#group = joined;
    reply.after.then(
      (result) => this.#settle(joined, true, result),
      (err: unknown) => this.#settle(joined, false, err),
    );
  }

  /** `outcome` is `after`'s result if `ok`, else its rejection. */
  #settle(group: Group, ok: boolean, outcome: unknown): void {
    if (this.#group === group) this.#group = null; // settled: a later Pending starts a new one
    this.#fill(group.first, ok, outcome);
    if (group.more !== null) for (const slot of group.more) this.#fill(slot, ok, outcome);
    // One commit settles many connections' groups in a row of microtasks; a microtask queued by
    // the first runs after the rest, so a reply settled by another promise in the same row (a
    // HELLO's claim) still leaves in the same write. A nextTick waited for all, but cost 3.4% of
    // the server's CPU in a closed loop of 50 connections (bench/loadgen.mjs).
    if (this.#drainQueued) return;
    this.#drainQueued = true;
    void SETTLED.then(() => {
      this.#drainQueued = false;
      this.#drain();
    });
  }

  #fill(slot: Slot, ok: boolean, outcome: unknown): void {
    const p = slot.pending!;
    slot.line = formatReply(ok ? p.ok(outcome) : p.fail(outcome));
    slot.pending = null;
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
