import type { Clock } from '../../clock.js';
import { StorageError } from './errors.js';

/**
 * Room left for WAIT's reply to come back before the call's own timeout: WAIT is given what
 * remains of the oldest write's timeout less this, so a missing replica is reported as such
 * (EREPLICAS) rather than as a timeout. Redis checks blocked clients' timeouts when its event loop
 * wakes, at least every 100 ms (hz 10), so a WAIT may answer up to that late.
 */
export const WAIT_REPLY_MARGIN_MS = 150;

export type ReplicaWaitOptions = {
  replicas: number;
  timeoutMs: number;
  clock: Clock;
  /** Sends `WAIT replicas ms` on the connection the writes went to; resolves with its reply. */
  wait(replicas: number, ms: number): Promise<number>;
};

/**
 * `--redis-wait N`: a write is acknowledged only once N replicas have it. WAIT covers every write
 * sent before it on the same connection, so one WAIT per turn of the event loop, sent after that
 * turn's writes, answers for all of them: many clients, one round trip.
 */
export class ReplicaWait {
  #options: ReplicaWaitOptions;
  #batch: Promise<void> | null = null;

  constructor(options: ReplicaWaitOptions) {
    this.#options = options;
  }

  /** Call right after sending a write: resolves once enough replicas acknowledged it. */
  after(): Promise<void> {
    const { replicas, timeoutMs, clock, wait } = this.#options;
    if (replicas === 0) return Promise.resolve();
    if (this.#batch === null) {
      const started = clock.now();
      this.#batch = new Promise<void>((resolve, reject) => {
        setImmediate(() => {
          this.#batch = null;
          const ms = Math.max(1, timeoutMs - (clock.now() - started) - WAIT_REPLY_MARGIN_MS);
          let answer: Promise<number>;
          try {
            answer = wait(replicas, ms);
          } catch (err) {
            return reject(err); // not sent (not connected, or too many unanswered)
          }
          answer.then((acked) => {
            if (acked >= replicas) return resolve();
            reject(
              new StorageError(
                'EREPLICAS',
                `${acked} of ${replicas} replicas acknowledged the write within ${ms} ms`,
              ),
            );
          }, reject);
        });
      });
      this.#batch.catch(() => {}); // each caller handles it; this only stops an unhandled rejection
    }
    return this.#batch;
  }
}
