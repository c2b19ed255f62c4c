/**
 * redis-server as the cluster's store: loopback only, in its own folder, every write appended to
 * its file and fsynced before Redis answers (appendfsync always), so an OK from Parity survives
 * kill -9 of Redis and power loss, as the Redis store asks of a production Redis. No RDB
 * snapshots (`save ''`): the append-only file is the one copy.
 */
export function redisServerArgs(port: number, dir: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--save',
    '',
    // Its log on stdout, labelled with the others; in the foreground, so it is our child.
    '--logfile',
    '',
    '--daemonize',
    'no',
  ];
}

/** The line redis-server logs once it takes connections (Redis 5 to 7 alike). */
export const REDIS_READY = /Ready to accept connections/;
