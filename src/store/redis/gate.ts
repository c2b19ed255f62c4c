import type { Clock } from '../../clock.js';
import { StorageError } from './errors.js';

export type GateOptions = {
  clock: Clock;
  /** A call not answered by then rejects ETIMEDOUT (the command itself stays counted). */
  timeoutMs: number;
  /** Commands sent and not yet answered, at most; past it, calls fail at once (EBUSY). */
  maxPending: number;
};

/**
 * Bounds what a slow or frozen Redis can cost. A command counts from when it is sent until Redis
 * answers it or the connection drops, not until its caller gives up: a caller that timed out
 * leaves its command, its arguments and its socket bytes in memory until then. So the count, not
 * the timeout, is what keeps memory bounded while Redis is frozen (SIGSTOP): past `maxPending`,
 * calls are refused without being sent.
 */
export class CommandGate {
  #options: GateOptions;
  #pending = 0;
  #drained = new Set<() => void>();
  /**
   * The one EBUSY error every refusal throws, as Redis answers common errors from shared objects:
   * a peer flooding a frozen Redis is refused tens of thousands of times a second, and an Error
   * built for each (its stack captured) was the largest share of what the server promoted then.
   */
  readonly #busy: StorageError;

  constructor(options: GateOptions) {
    this.#options = options;
    this.#busy = new StorageError(
      'EBUSY',
      `${options.maxPending} commands to Redis are unanswered; not sending more until it answers`,
    );
  }

  /** Commands sent and not yet answered. */
  get pending(): number {
    return this.#pending;
  }

  /** The EBUSY error `send` would throw now, or null if it would send. */
  get refusal(): StorageError | null {
    return this.#pending >= this.#options.maxPending ? this.#busy : null;
  }

  /** Sends one command (counted until it settles), or throws EBUSY without sending it. */
  send<T>(command: () => Promise<T>): Promise<T> {
    if (this.#pending >= this.#options.maxPending) throw this.#busy;
    const sent = command();
    this.#pending++;
    const settled = () => {
      this.#pending--;
      if (this.#pending === 0) for (const done of [...this.#drained]) done();
    };
    sent.then(settled, settled);
    return sent;
  }

  /** `promise`'s outcome, or ETIMEDOUT once timeoutMs has passed. */
  deadline<T>(promise: Promise<T>): Promise<T> {
    const { clock, timeoutMs } = this.#options;
    return new Promise<T>((resolve, reject) => {
      const timer = clock.setTimeout(
        () => reject(new StorageError('ETIMEDOUT', `Redis did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      promise.then(
        (value) => (clock.clearTimeout(timer), resolve(value)),
        (err: unknown) => (clock.clearTimeout(timer), reject(err)),
      );
    });
  }

  /** Resolves once no command is pending, or after `ms` at the latest. */
  drained(ms: number): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    const { clock } = this.#options;
    return new Promise<void>((resolve) => {
      const done = () => {
        clock.clearTimeout(timer);
        this.#drained.delete(done);
        resolve();
      };
      const timer = clock.setTimeout(done, ms);
      this.#drained.add(done);
    });
  }
}
