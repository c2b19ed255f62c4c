import { Redis } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { REDIS_STORE_DEFAULTS } from '../../limits.js';
import type { RedisTarget } from './url.js';

/** Waits before reconnect attempt `attempt` (1, 2, …): doubling from the minimum to the maximum. */
export function reconnectDelay(attempt: number): number {
  const { reconnectMinMs, reconnectMaxMs } = REDIS_STORE_DEFAULTS;
  return Math.min(reconnectMinMs * 2 ** Math.min(attempt - 1, 20), reconnectMaxMs);
}

/**
 * An ioredis connection that never holds a command for later. ioredis was chosen over node-redis
 * because it speaks to a single Redis and to Redis Cluster with one API, writes commands to the
 * socket in call order with no batching to ask for, and lets both of these be turned off:
 * - the offline queue: a command while disconnected fails at once (EREDISDOWN) instead of waiting
 *   in memory for a Redis that may be gone for minutes;
 * - resending unanswered commands after a reconnect: a write that was never acknowledged must not
 *   be applied later on a new connection, behind newer ones; with `maxRetriesPerRequest: 0` every
 *   command in flight is rejected when the connection drops (ioredis would otherwise drop them
 *   silently, never settling their promises).
 * It is not connected yet: call `connect()`. It reconnects by itself, with backoff, until
 * `disconnect()`.
 */
export function redisClient(
  target: RedisTarget,
  options: { name: string; connectTimeoutMs: number; tls?: ConnectionOptions },
): Redis {
  return new Redis({
    host: target.host,
    port: target.port,
    db: target.db,
    username: target.username,
    password: target.password,
    ...(target.tls ? { tls: { ...options.tls } } : {}),
    connectionName: options.name,
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: false,
    // Waits for a Redis that is loading its append-only file after a restart before sending.
    enableReadyCheck: true,
    retryStrategy: reconnectDelay,
    connectTimeout: options.connectTimeoutMs,
    keepAlive: REDIS_STORE_DEFAULTS.keepAliveMs,
  });
}
