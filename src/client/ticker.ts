import type { Clock, TimerHandle } from '../clock.js';

/**
 * A drift-free periodic schedule: tick k is due at origin + k × periodMs. Each timer is set for the
 * next grid point from the current time, so a late timer does not push later ticks back (as
 * setInterval's does). A timer that fires more than a period late runs one tick, not a burst: the
 * ticks it missed are skipped and the next one lands on the grid.
 *
 * The grid outlives stop/start, so ticks missed while disconnected are skipped the same way.
 */
export class Ticker {
  readonly #clock: Clock;
  readonly #periodMs: number;
  readonly #onTick: () => void;
  /** Set by the first start(); NaN until then. */
  #origin = NaN;
  /** Index of the last grid point run or skipped. */
  #last = 0;
  #timer: TimerHandle | null = null;

  constructor(clock: Clock, periodMs: number, onTick: () => void) {
    this.#clock = clock;
    this.#periodMs = periodMs;
    this.#onTick = onTick;
  }

  get running(): boolean {
    return this.#timer !== null;
  }

  /** Starts ticking: the first start fixes the grid's origin at now; a restart keeps the grid. */
  start(): void {
    this.stop();
    const now = this.#clock.now();
    if (Number.isNaN(this.#origin)) this.#origin = now;
    // A grid point at or before now is in the past: its tick was missed.
    this.#last = Math.max(this.#last, this.#index(now));
    this.#schedule(now);
  }

  stop(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  #index(now: number): number {
    return Math.floor((now - this.#origin) / this.#periodMs);
  }

  #schedule(now: number): void {
    const due = this.#origin + (this.#last + 1) * this.#periodMs;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), due - now);
  }

  #fire(): void {
    const timer = this.#timer;
    const now = this.#clock.now();
    const index = this.#index(now);
    // A timer can fire a little early on some clocks; then nothing is due yet and it is set again.
    if (index > this.#last) {
      this.#last = index;
      this.#onTick();
      // onTick may have stopped (or restarted) the ticker: the send failed, the connection closed.
      if (this.#timer !== timer) return;
    }
    this.#schedule(now);
  }
}
