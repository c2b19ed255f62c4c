import type { Redis } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { realClock, type Clock } from '../../clock.js';
import { REDIS_STORE_DEFAULTS } from '../../limits.js';
import { IdLimitError, TakenOverError, type Holder, type ValueStore } from '../value-store.js';
import { Claims } from './claims.js';
import { redisClient } from './client.js';
import { durability, readPersistence } from './durability.js';
import { StorageError, toStorageError } from './errors.js';
import { CommandGate } from './gate.js';
import { ReplicaWait } from './replicas.js';
import {
  CLAIM,
  idKey,
  parseAnnouncement,
  parseClaimReply,
  parseSetReply,
  SET,
  TAKEOVER_CHANNEL,
} from './scripts.js';
import { parseRedisUrl, type RedisTarget } from './url.js';

type Log = (details: Record<string, unknown>, message: string) => void;

export type RedisStoreOptions = {
  /**
   * Most ids (keys) the database may hold: a claim of a new id past it is refused. Counted by
   * DBSIZE inside the claim script, so exact across any number of servers on one Redis, provided
   * the database (the URL's /db) holds nothing but Parity's keys.
   */
  maxIds: number;
  /** See REDIS_STORE_DEFAULTS. */
  timeoutMs: number;
  waitReplicas: number;
  /** Start even if Redis has appendonly no (logged as a warning). */
  allowVolatile: boolean;
  maxPending?: number;
  openTimeoutMs?: number;
  /** For `rediss://`: merged into the TLS options (a test CA, a client certificate). */
  tls?: ConnectionOptions;
  clock?: Clock;
  /** Told what OK means with Redis's settings (at open), and when the connection comes back. */
  info?: Log;
  /** Told when the connection is lost, and at open with --allow-volatile-store on a volatile Redis. */
  warn?: Log;
};

/**
 * The values in Redis, for several servers sharing them (the key layout and the scripts are in
 * scripts.ts; what OK means, in protocol.md's durability section). Two connections: one for commands,
 * written in call order, so a `set` sent after a `claim` is applied after it; one subscribed to
 * the takeover channel, so a holder here hears of a claim made on another server at once.
 */
export class RedisStore implements ValueStore {
  readonly description: string;
  #options: RedisStoreOptions;
  #commands: Redis;
  #subscriber: Redis;
  #gate: CommandGate;
  #replicas: ReplicaWait;
  #claims = new Claims();
  #size = 0;
  /** Grows with every write this server sends: SET refuses one older than the last applied. */
  #seq = 0;
  /** Connected, and the scripts loaded ahead of any call on this connection. */
  #ready = false;
  #opened = false;
  /** Why the command connection is not usable, when it is not: the last error, or a close. */
  #down = 'not connected yet';
  #closing: Promise<void> | null = null;
  #durability = '';
  /** The last refusal of an unsent call, reused while it still says why (see CommandGate). */
  #lastRefusal: StorageError | null = null;

  private constructor(target: RedisTarget, options: RedisStoreOptions) {
    this.description = target.description;
    this.#options = options;
    const clock = options.clock ?? realClock;
    const connect = { connectTimeoutMs: options.timeoutMs, tls: options.tls };
    this.#commands = redisClient(target, { ...connect, name: 'parity' });
    this.#subscriber = redisClient(target, { ...connect, name: 'parity-takeovers' });
    this.#gate = new CommandGate({
      clock,
      timeoutMs: options.timeoutMs,
      maxPending: options.maxPending ?? REDIS_STORE_DEFAULTS.maxPending,
    });
    this.#replicas = new ReplicaWait({
      replicas: options.waitReplicas,
      timeoutMs: options.timeoutMs,
      clock,
      wait: (replicas, ms) =>
        this.#gate.send(() => this.#commands.call('WAIT', replicas, ms) as Promise<number>),
    });
    this.#commands.on('error', (err: Error) => (this.#down = err.message));
    this.#commands.on('ready', () => this.#connected());
    this.#commands.on('close', () => this.#disconnected());
    // Its failures are the command connection's too, and logged there; ioredis resubscribes.
    this.#subscriber.on('error', () => {});
    // TAKEOVER_CHANNEL is the only channel it subscribes to.
    this.#subscriber.on('message', (_channel: string, message: string) => {
      const claim = parseAnnouncement(message);
      if (claim !== null) this.#claims.announced(claim.id, claim.epoch, claim.token);
    });
  }

  /**
   * Connects both connections, reads Redis's persistence settings and reports what `OK` means
   * with them (`info`), or refuses to open on `appendonly no` unless `allowVolatile` (`warn`).
   */
  static async open(url: string, options: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(parseRedisUrl(url), options);
    const clock = options.clock ?? realClock;
    const ms = options.openTimeoutMs ?? REDIS_STORE_DEFAULTS.openTimeoutMs;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = clock.setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
        store.#open().then(
          () => (clock.clearTimeout(timer), resolve()),
          (err: unknown) => (clock.clearTimeout(timer), reject(err)),
        );
      });
    } catch (err) {
      store.#disconnect();
      const reason = (err as Error).message;
      throw new Error(`cannot use the Redis store ${store.description}: ${reason}`, { cause: err });
    }
    return store;
  }

  async #open(): Promise<void> {
    await Promise.all([this.#commands.connect(), this.#subscriber.connect()]).catch(() => {
      throw new Error(this.#down); // ioredis only says "Connection is closed."
    });
    const persistence = await readPersistence(this.#commands);
    const verdict = durability(persistence, this.#options);
    const details = {
      store: this.description,
      ...persistence,
      waitReplicas: this.#options.waitReplicas,
    };
    if (verdict.level === 'refuse') throw new Error(verdict.message);
    this.#durability = verdict.message;
    (verdict.level === 'warn' ? this.#options.warn : this.#options.info)?.(
      details,
      verdict.message,
    );
    this.#size = await this.#commands.dbsize();
    await this.#subscriber.subscribe(TAKEOVER_CHANNEL);
    this.#opened = true;
  }

  /** What `OK n` means with the Redis settings read at open. */
  get durability(): string {
    return this.#durability;
  }

  /** Keys in the database as last counted (by the last claim or write, or at open). */
  get size(): number {
    return this.#size;
  }

  /** Commands sent and not yet answered (see CommandGate). */
  get pending(): number {
    return this.#gate.pending;
  }

  claim(id: string, holder: Holder): Promise<number> {
    this.#claims.begin(id, holder);
    const { maxIds } = this.#options;
    return this.#write(
      () =>
        this.#commands.evalsha(
          CLAIM.sha,
          1,
          idKey(id),
          holder.token,
          String(maxIds),
          TAKEOVER_CHANNEL,
          id,
        ),
      (reply) => {
        const claimed = parseClaimReply(reply);
        this.#size = claimed.size;
        if (claimed.kind === 'full') {
          // Nothing was claimed: forget the claim begun, or a write refused later (a VALUE
          // pipelined behind this HELLO) would end this connection as taken over.
          this.#claims.release(id, holder);
          throw new IdLimitError(maxIds);
        }
        this.#claims.confirmed(id, holder, claimed.epoch, claimed.value);
        return claimed.value;
      },
      () => this.#claims.failed(id, holder),
    );
  }

  set(id: string, holder: Holder, value: number): Promise<void> {
    // Refused unsent, as every write is while Redis is frozen, at a flooding peer's rate: no
    // closures, no sequence number, one rejected promise.
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const seq = ++this.#seq;
    return this.#write(
      () => this.#commands.evalsha(SET.sha, 1, idKey(id), holder.token, String(value), String(seq)),
      (reply) => {
        const result = parseSetReply(reply);
        if (result.kind === 'taken') {
          this.#claims.refused(id, holder, result.token);
          throw new TakenOverError(id);
        }
        if (result.kind === 'stale')
          throw new StorageError('ESTALE', 'a newer write of this holder was applied first');
        this.#size = result.size;
      },
    ).then(() => this.#claims.stored(id, holder, value));
  }

  peek(id: string): number | undefined {
    return this.#claims.peek(id);
  }

  release(id: string, holder: Holder): void {
    this.#claims.release(id, holder);
  }

  /** Waits for the commands in flight (at most timeoutMs), then closes both connections. */
  close(): Promise<void> {
    this.#closing ??= this.#gate.drained(this.#options.timeoutMs).then(() => this.#disconnect());
    return this.#closing;
  }

  /**
   * Sends one write (a script call) and, with --redis-wait, the WAIT that covers it. Resolves with
   * `interpret(reply)` once that is acknowledged; rejects with a StorageError (or the
   * TakenOverError / IdLimitError `interpret` throws), at the latest after timeoutMs. `failed` is
   * told of any failure before the reply was interpreted.
   */
  #write<T>(
    send: () => Promise<unknown>,
    interpret: (reply: unknown) => T,
    failed: () => void = () => {},
  ): Promise<T> {
    let reply: Promise<unknown>;
    try {
      const refusal = this.#refusal();
      if (refusal !== null) throw refusal;
      reply = this.#gate.send(send);
    } catch (err) {
      failed();
      return Promise.reject(err);
    }
    const replicated = this.#replicas.after();
    const done = reply
      .then(interpret)
      .catch((err: unknown) => {
        if (err instanceof TakenOverError || err instanceof IdLimitError) throw err;
        failed();
        throw toStorageError(err);
      })
      .then(async (result) => {
        await replicated;
        return result;
      });
    return this.#gate.deadline(done);
  }

  /** Why a call would be refused unsent now (closed, not connected, EBUSY), or null. */
  #refusal(): StorageError | null {
    if (this.#closing !== null) return this.#refuse('ECLOSED', 'the store is closed');
    if (!this.#ready) return this.#refuse('EREDISDOWN', `not connected to Redis (${this.#down})`);
    return this.#gate.refusal;
  }

  #refuse(code: string, message: string): StorageError {
    const last = this.#lastRefusal;
    if (last?.code === code && last.message === message) return last;
    return (this.#lastRefusal = new StorageError(code, message));
  }

  /**
   * The connection is ready: the scripts are loaded before anything else is sent on it, so a
   * script call never meets NOSCRIPT and is never resent. (ioredis's defineCommand resends on
   * NOSCRIPT, after commands sent since, which would break the order of writes and WAIT.)
   */
  #connected(): void {
    for (const script of [CLAIM, SET]) {
      this.#commands.call('SCRIPT', 'LOAD', script.source).catch((err: unknown) => {
        this.#options.warn?.({ store: this.description, err }, 'Redis refused SCRIPT LOAD');
      });
    }
    this.#ready = true;
    this.#down = 'the connection closed'; // unless an error says more
    if (this.#opened && this.#closing === null) {
      this.#options.info?.({ store: this.description }, 'reconnected to Redis');
    }
  }

  #disconnected(): void {
    const wasReady = this.#ready;
    this.#ready = false;
    if (wasReady && this.#opened && this.#closing === null) {
      this.#options.warn?.(
        { store: this.description, err: this.#down },
        'lost the connection to Redis; calls are ERR STORAGE until it is back',
      );
    }
  }

  #disconnect(): void {
    this.#commands.disconnect();
    this.#subscriber.disconnect();
  }
}

/** Opens the Redis store at `url` (`redis://` or `rediss://`); see RedisStore.open. */
export function openRedisStore(url: string, options: RedisStoreOptions): Promise<RedisStore> {
  return RedisStore.open(url, options);
}
