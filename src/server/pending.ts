import type { Reply } from '../protocol/replies.js';

/**
 * A reply that waits for a store call: `ok` builds it from the call's result, `fail` from its
 * error. The reply queue hangs one reaction on each distinct `after`, so the VALUEs of one group
 * commit, which all wait on that commit's promise, cost one reaction per connection, not a chain
 * of three promises each (bench/loadgen.mjs flood: see BENCHMARKS.md, "Where the time goes").
 */
export class Pending {
  private constructor(
    readonly after: Promise<unknown>,
    readonly ok: (result: unknown) => Reply,
    readonly fail: (err: unknown) => Reply,
  ) {}

  static of<T>(
    after: Promise<T>,
    ok: (result: T) => Reply,
    fail: (err: unknown) => Reply,
  ): Pending {
    // `ok` is only ever called with `after`'s result, so erasing T here is safe.
    return new Pending(after, ok as (result: unknown) => Reply, fail);
  }
}

/** What a handler answers: a reply now, or one that waits (a store call, an AUTH check). */
export type Answer = Reply | Pending;
