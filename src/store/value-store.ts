/**
 * The seam between the protocol and where values live. The server's handlers see only this: the
 * file store (embedded, the default) and the Redis store (`--store redis://…`, for several
 * servers) both implement it, and the protocol code does not know which one it runs on.
 */

/** A connection holding an id; told when another connection, on any server, claims it. */
export interface Holder {
  /**
   * Unique to this claim across every server and every restart (the fencing token): a write is
   * applied only while the id's current claim is this one.
   */
  readonly token: string;
  /** Another connection claimed the id: answer `BYE TAKEN_OVER` and close. Called at most once. */
  takenOver(): void;
}

/** The write was refused because another connection claimed the id since: nothing was stored. */
export class TakenOverError extends Error {
  readonly code = 'TAKEN_OVER';
  constructor(id: string) {
    super(`${id} was claimed by another connection`);
  }
}

/** A new id would take the store past its `--max-ids`: nothing was stored or claimed. */
export class IdLimitError extends Error {
  readonly code = 'ID_LIMIT';
  constructor(readonly maxIds: number) {
    super(`the server holds its maximum of ${maxIds} ids; use a known id`);
  }
}

/**
 * Any other rejection is a storage failure (`ERR STORAGE`, the request is not acknowledged): its
 * `code` (ENOSPC, ETIMEDOUT, …) is shown to the peer, never its message.
 */
export interface ValueStore {
  /** For the console: `file state/values.json` or `redis://127.0.0.1:6379/0` (no password). */
  readonly description: string;
  /** Ids stored: exact for the file store, the last count read for Redis (metrics, live view). */
  readonly size: number;
  /**
   * Claims `id` for `holder`: the previous holder, on this server or another, is told
   * (`takenOver`), and its writes from now on are refused. Resolves with the id's value (0 if
   * none), which includes every value acknowledged before this call, once that is durable.
   * Rejects with IdLimitError if the id is new and the store is full.
   *
   * Calls are ordered: a `set` made after `claim` returns (even before it resolves) is applied
   * after the claim.
   */
  claim(id: string, holder: Holder): Promise<number>;
  /**
   * The refusal `claim(id)` would give, when the store knows it at once (the file store's
   * --max-ids); null otherwise. The connection asks first, so the requests pipelined behind a
   * refused HELLO never see it as `id`.
   */
  refuses?(id: string): IdLimitError | null;
  /**
   * Stores `value` for `id` if `holder`'s claim is still the current one; resolves once durable.
   * Rejects with TakenOverError (nothing stored) if another claim came since, IdLimitError if the
   * id is new and the store is full, and a storage error otherwise.
   */
  set(id: string, holder: Holder, value: number): Promise<void>;
  /** The value a live view shows (no claim, no durability wait); undefined if unknown here. */
  peek(id: string): number | undefined;
  /** `holder`'s connection closed: it is no longer told of takeovers. Its claim may stay. */
  release(id: string, holder: Holder): void;
  /** No more calls: finishes what is in flight, makes everything durable, lets go. */
  close(): Promise<void>;
}
