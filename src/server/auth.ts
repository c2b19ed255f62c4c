import { randomBytes } from 'node:crypto';
import { realClock, type Clock } from '../clock.js';
import type { ByeCode, Reply } from '../protocol/replies.js';
import type { Request } from '../protocol/requests.js';
import { Gate } from './gate.js';
import type { Answer } from './pending.js';
import { SCRYPT_DEFAULTS, verifyPassword, type UserEntry, type Users } from './users-file.js';

/** The limits of authentication, each a flag of the same name in kebab-case where noted. */
export const AUTH_DEFAULTS = {
  /** Failed AUTHs on one connection before `BYE AUTH_FAILED` (`--auth-max-failures`): typos, not a dictionary. */
  maxFailures: 3,
  /** Delay of the reply to the first recent failure from an address (`--auth-delay-ms`); doubles per further one. */
  delayMs: 250,
  /** Cap on that delay: guessing stays slow, a user who mistypes waits seconds at most. */
  maxDelayMs: 8_000,
  /** An address's failures are forgotten this long after its last one. */
  failureWindowMs: 10 * 60_000,
  /** Addresses remembered; past it the one that failed least recently is forgotten (bounded memory). */
  maxAddresses: 10_000,
  /**
   * Password checks (scrypt) run at once. They run on libuv's pool of 4 threads, where a commit's
   * two fdatasyncs run too: unbounded, a flood of AUTH guesses queued every commit behind them
   * (an OK held over 10 s). Two keep both cores of a small machine busy and two threads free.
   */
  maxChecks: 2,
};

export type AuthLimits = typeof AUTH_DEFAULTS;

/**
 * Failure counts per remote address, for the slow-down. Pure but for the injected `now`. A Map
 * keeps insertion order, so re-inserting on every failure makes its first key the least recently
 * failed address: the one dropped when the table is full.
 */
export class FailureThrottle {
  readonly #entries = new Map<string, { count: number; last: number }>();
  readonly #now: () => number;
  readonly #limits: AuthLimits;

  constructor(now: () => number, limits: AuthLimits = AUTH_DEFAULTS) {
    this.#now = now;
    this.#limits = limits;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Records a failure from `address`; returns how long its reply is to be held back. */
  fail(address: string): number {
    const now = this.#now();
    const { failureWindowMs, delayMs, maxDelayMs, maxAddresses } = this.#limits;
    const old = this.#entries.get(address);
    const count = old !== undefined && now - old.last < failureWindowMs ? old.count + 1 : 1;
    this.#entries.delete(address);
    this.#entries.set(address, { count, last: now });
    if (this.#entries.size > maxAddresses) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    return Math.min(maxDelayMs, delayMs * 2 ** (count - 1));
  }
}

/** What authentication needs of its connection beyond the request. */
export interface AuthSession {
  finish(code: ByeCode, text: string): void;
}

/** The server-wide side: the users, the per-address throttle, the clock. */
export class Authenticator {
  #users: Users;
  readonly limits: AuthLimits;
  readonly clock: Clock;
  readonly throttle: FailureThrottle;
  readonly #checks: Gate;
  /** Checked for ids not in the file, so an unknown id costs the same scrypt as a known one. */
  readonly #decoy: UserEntry = {
    params: SCRYPT_DEFAULTS,
    salt: randomBytes(16),
    hash: randomBytes(32),
  };

  constructor(users: Users, options: { clock?: Clock; limits?: Partial<AuthLimits> } = {}) {
    this.#users = users;
    this.clock = options.clock ?? realClock;
    this.limits = { ...AUTH_DEFAULTS, ...options.limits };
    this.throttle = new FailureThrottle(() => this.clock.now(), this.limits);
    this.#checks = new Gate(this.limits.maxChecks);
  }

  /** Replaces the users (SIGHUP); connections already authenticated keep their id. */
  setUsers(users: Users): void {
    this.#users = users;
  }

  forConnection(address: string): ConnectionAuth {
    return new ConnectionAuth(this, address);
  }

  async check(id: string, password: string): Promise<boolean> {
    const entry = this.#users.get(id);
    const match = await this.#checks
      .run(() => verifyPassword(entry ?? this.#decoy, password))
      .catch(() => false);
    return entry !== undefined && match;
  }

  /** Resolves after the slow-down for one more failure from `address`. */
  failed(address: string): Promise<void> {
    const ms = this.throttle.fail(address);
    return new Promise((resolve) => this.clock.setTimeout(resolve, ms));
  }
}

const AUTH_REQUIRED: Reply = {
  kind: 'ERR',
  code: 'AUTH_REQUIRED',
  text: 'say AUTH <id> <password> first',
};

/**
 * One connection's authentication. AUTH is checked asynchronously (scrypt, then the slow-down), so
 * the requests that depend on it (AUTH, HELLO, VALUE) queue behind the last AUTH and run, in
 * order, once it is answered; other requests are not held. With nothing pending they run at once.
 */
export class ConnectionAuth {
  /** The id this connection proved, or null. */
  id: string | null = null;
  readonly #auth: Authenticator;
  readonly #address: string;
  #failures = 0;
  #tail: Promise<unknown> | null = null;

  constructor(auth: Authenticator, address: string) {
    this.#auth = auth;
    this.#address = address;
  }

  /** HELLO and VALUE run (via `run`) only once authenticated, and HELLO only for that id. */
  guard(request: Request, run: () => Answer | Promise<Answer>): Answer | Promise<Answer> {
    if (request.verb !== 'HELLO' && request.verb !== 'VALUE') return run();
    return this.#after(() => {
      if (this.id === null) return AUTH_REQUIRED;
      if (request.verb === 'HELLO' && request.id !== this.id) return this.#forbidden();
      return run();
    });
  }

  authenticate(session: AuthSession, id: string, password: string): Promise<Reply> {
    const verdict: Promise<Reply> = Promise.resolve(
      this.#after(async (): Promise<Reply> => {
        const max = this.#auth.limits.maxFailures;
        const failed: Reply = { kind: 'ERR', code: 'AUTH_FAILED', text: 'wrong id or password' };
        if (this.#failures >= max) return failed; // the connection is closing: no more guesses
        if (this.id !== null && this.id !== id) return this.#forbidden();
        if (await this.#auth.check(id, password)) {
          this.id = id;
          return { kind: 'AUTHED', id };
        }
        this.#failures++;
        await this.#auth.failed(this.#address);
        if (this.#failures === max) session.finish('AUTH_FAILED', `${max} failed AUTH; closing`);
        return failed;
      }),
    );
    const tail = verdict.finally(() => {
      if (this.#tail === tail) this.#tail = null;
    });
    this.#tail = tail;
    return verdict;
  }

  #forbidden(): Reply {
    return {
      kind: 'ERR',
      code: 'FORBIDDEN',
      text: `this connection is authenticated as ${this.id}`,
    };
  }

  #after<T>(fn: () => T | Promise<T>): T | Promise<T> {
    return this.#tail === null ? fn() : this.#tail.then(fn);
  }
}
