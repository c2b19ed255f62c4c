import type { Random } from '../clock.js';

export type BackoffOptions = { baseMs: number; maxMs: number };

/**
 * Exponential backoff with equal jitter: attempt k waits a uniform draw from [step/2, step], where
 * step = min(maxMs, baseMs × 2^k). Pure: the random source is injected.
 */
export class Backoff {
  readonly #options: BackoffOptions;
  readonly #random: Random;
  #attempt = 0;

  constructor(options: BackoffOptions, random: Random) {
    this.#options = options;
    this.#random = random;
  }

  /** Failed attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt, in whole milliseconds; advances the step. */
  next(): number {
    const { baseMs, maxMs } = this.#options;
    // Capping the exponent keeps 2^k finite however long the server stays down.
    const step = Math.min(maxMs, baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(step / 2 + (this.#random() * step) / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
