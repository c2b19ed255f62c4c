/**
 * A Redis store call that failed: `ERR STORAGE`, not acknowledged. The peer is shown `code`, never
 * the message. Codes of our own:
 * - `EREDISDOWN`: not connected to Redis (reconnecting); the call was not sent.
 * - `ECONNRESET`: the connection dropped with the call in flight; Redis may or may not have it.
 * - `ETIMEDOUT`: no answer within the store timeout; Redis may still apply it.
 * - `EBUSY`: too many commands are unanswered (a stalled Redis); the call was not sent.
 * - `EREPLICAS`: applied, but fewer replicas than `--redis-wait` acknowledged it in time.
 * - `ESTALE`: a newer write of the same holder was applied first (a dropped connection's late write).
 * - `ECLOSED`: the store is closed.
 * A Redis error reply keeps Redis's own first word: `OOM`, `READONLY`, `MISCONF`, `NOSCRIPT`, ….
 */
export class StorageError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const CLOSED = /^Connection is closed|^Command aborted/;
const NOT_WRITABLE = /^Stream isn't writeable/;

/** Any rejection from ioredis as a StorageError with a stable code. */
export function toStorageError(err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const e = err as Error & { code?: unknown };
  const message = e?.message ?? String(err);
  if (e?.name === 'ReplyError') {
    const word = /^[A-Z]+(?= |$)/.exec(message)?.[0] ?? 'EREDIS';
    return new StorageError(word, message, { cause: err });
  }
  if (e?.name === 'MaxRetriesPerRequestError' || CLOSED.test(message))
    return new StorageError('ECONNRESET', message, { cause: err });
  if (NOT_WRITABLE.test(message)) return new StorageError('EREDISDOWN', message, { cause: err });
  const code = typeof e?.code === 'string' ? e.code : 'EREDIS';
  return new StorageError(code, message, { cause: err });
}
