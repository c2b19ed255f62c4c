export type RedisPersistence = {
  /** `yes` (the default) or `no`. */
  appendonly?: 'yes' | 'no';
  /** `always` (the default), `everysec` or `no`. */
  appendfsync?: 'always' | 'everysec' | 'no';
};

/**
 * redis-server's arguments, but for where it listens: loopback only, its files in `dir`, by
 * default every write appended to its file and fsynced before Redis answers (appendfsync always),
 * so an OK from Parity survives kill -9 of Redis and power loss, as the Redis store asks of a
 * production Redis. No RDB snapshots (`save ''`): the append-only file is the one copy. Its log
 * on stdout, in the foreground: the child of whoever started it. `npm run cluster` and the
 * tests' Redis run on these.
 */
export function redisServerArgs(dir: string, o: RedisPersistence = {}): string[] {
  return [
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    o.appendonly ?? 'yes',
    '--appendfsync',
    o.appendfsync ?? 'always',
    '--save',
    '',
    '--logfile',
    '',
    '--daemonize',
    'no',
  ];
}

/** The line redis-server logs once it takes connections (Redis 5 to 7 alike). */
export const REDIS_READY = /Ready to accept connections/;
