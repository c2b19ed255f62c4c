/**
 * Time and randomness are injected wherever behaviour depends on them, so tests drive a fake clock
 * and a seeded source instead of sleeping.
 */
export type TimerHandle = { readonly __timer: unique symbol } | ReturnType<typeof setTimeout>;

export interface Clock {
  /** Milliseconds on a monotonic-enough scale (Date.now for the real clock). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * `read()` (Date.now) taken once and reused until the microtasks after the code that took it: the
 * requests of one socket read, and their records, share one reading. nginx serves its access log
 * the same way (a time cached once per event-loop iteration, ngx_time_update), as Redis does its
 * cached mstime. A reading cost ~100 ns on these machines (kvm-clock), and a flood of VALUEs took
 * three per request: 180 ms of one 10 s profile on the request's alone.
 */
export function turnClock(read: () => number = Date.now): () => number {
  let at = 0;
  let fresh = false;
  const expire = () => {
    fresh = false;
  };
  return () => {
    if (!fresh) {
      at = read();
      fresh = true;
      queueMicrotask(expire);
    }
    return at;
  };
}

/** A uniform number in [0, 1), like Math.random. */
export type Random = () => number;

/** A uniform integer in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.min(n - 1, Math.floor(random() * n));
}
