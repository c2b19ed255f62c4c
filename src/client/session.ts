import type { Clock, Random, TimerHandle } from '../clock.js';
import { randomInt } from '../clock.js';
import { MAX_VALUE } from '../protocol/syntax.js';
import type { ClientEvent } from './types.js';

export type SessionTiming = { switchMinMs: number; switchMaxMs: number };

export type SessionDeps = {
  clock: Clock;
  random: Random;
  timing: SessionTiming;
  send: (line: string) => void;
  emit: (event: ClientEvent) => void;
};

/** Values wrap within 0-99; the modulus is derived so the range lives in one place. */
const MODULUS = MAX_VALUE + 1;

/**
 * The counter process of one connection, started by the server's answer to HELLO. It owns the
 * counter, the increment and the switch timer; the ticks come from outside (the Ticker), so the
 * grid they follow can outlive the connection. A new connection gets a new Session: increment 1
 * and a fresh switch timer, as the rules ask.
 */
export class Session {
  readonly #deps: SessionDeps;
  #counter: number;
  #increment = 1;
  #switchTimer: TimerHandle | null = null;

  constructor(deps: SessionDeps, start: number) {
    this.#deps = deps;
    this.#counter = start;
    this.#scheduleSwitch();
  }

  get counter(): number {
    return this.#counter;
  }

  get increment(): number {
    return this.#increment;
  }

  tick(): void {
    this.#counter = (this.#counter + this.#increment) % MODULUS;
    this.#deps.send(`VALUE ${this.#counter}`);
  }

  /** The answer to EVEN/ODD: its number is the increment from the next tick on (0 is allowed). */
  setIncrement(value: number): void {
    const from = this.#increment;
    this.#increment = value;
    this.#deps.emit({ type: 'increment', from, to: value });
  }

  close(): void {
    if (this.#switchTimer !== null) this.#deps.clock.clearTimeout(this.#switchTimer);
    this.#switchTimer = null;
  }

  /** Draws a delay uniform over the whole-millisecond window [min, max], fresh for every switch. */
  #scheduleSwitch(): void {
    const { clock, random, timing } = this.#deps;
    const span = timing.switchMaxMs - timing.switchMinMs + 1;
    const delay = timing.switchMinMs + randomInt(random, span);
    this.#switchTimer = clock.setTimeout(() => this.#switch(), delay);
  }

  #switch(): void {
    // The next delay runs from this request, not from its reply, so a slow reply does not stretch
    // the gap between switches.
    this.#scheduleSwitch();
    this.#deps.send(this.#deps.random() < 0.5 ? 'EVEN' : 'ODD');
  }
}
