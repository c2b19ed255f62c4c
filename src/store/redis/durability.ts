/** Redis's persistence settings, as far as they could be read. */
export type Persistence = {
  appendonly: boolean;
  /** `always`, `everysec` or `no`; null when CONFIG GET is refused (renamed, or not allowed). */
  appendfsync: string | null;
};

/** The commands this module sends; an ioredis client has them. */
export interface ConfigReader {
  call(command: string, ...args: string[]): Promise<unknown>;
}

const configValue = (reply: unknown, name: string): string => {
  // RESP2: [name, value]; an unknown parameter is [].
  if (!Array.isArray(reply) || reply[0] !== name || typeof reply[1] !== 'string')
    throw new Error(`CONFIG GET ${name} answered ${JSON.stringify(reply)}`);
  return reply[1];
};

/**
 * CONFIG GET appendonly and appendfsync; where CONFIG is renamed away or an ACL forbids it (as
 * managed services do), `aof_enabled` from INFO persistence, which does not say the fsync policy.
 */
export async function readPersistence(redis: ConfigReader): Promise<Persistence> {
  try {
    const appendonly = configValue(await redis.call('CONFIG', 'GET', 'appendonly'), 'appendonly');
    const fsync = configValue(await redis.call('CONFIG', 'GET', 'appendfsync'), 'appendfsync');
    return { appendonly: appendonly === 'yes', appendfsync: fsync };
  } catch (err) {
    if ((err as Error).name !== 'ReplyError') throw err;
  }
  const info = String(await redis.call('INFO', 'persistence'));
  const aof = /^aof_enabled:([01])\r?$/m.exec(info);
  if (aof === null) throw new Error('INFO persistence has no aof_enabled field');
  return { appendonly: aof[1] === '1', appendfsync: null };
}

export type Durability =
  /** Start, and log `message` as info. */
  | { level: 'info'; message: string }
  /** Start (--allow-volatile-store), and log `message` as a warning. */
  | { level: 'warn'; message: string }
  /** Refuse to start, with `message`. */
  | { level: 'refuse'; message: string };

const FSYNC: Record<string, string> = {
  always:
    'Redis wrote n to its append-only file and fsynced it (appendfsync always): ' +
    'it survives kill -9 of Redis and power loss of its machine',
  everysec:
    'Redis wrote n to its append-only file, which it fsyncs once a second (appendfsync everysec): ' +
    'up to about the last second of OKs (two if its disk is slow) can be lost ' +
    'if Redis crashes or its machine loses power',
  no:
    'Redis wrote n to its append-only file and the OS writes it to disk when it chooses ' +
    '(appendfsync no): it survives kill -9 of Redis, but what the OS had not written ' +
    '(typically up to 30 s) is lost if its machine loses power or crashes',
};

/** What `OK n` means with these settings, or why the server must not start on them. */
export function durability(
  persistence: Persistence,
  options: { waitReplicas: number; allowVolatile: boolean },
): Durability {
  const replicas =
    options.waitReplicas === 0
      ? ''
      : `, and ${options.waitReplicas} replica(s) acknowledged receiving it (WAIT; each ` +
        'replica makes it durable by its own appendfsync)';
  if (!persistence.appendonly) {
    const volatile =
      `Redis has appendonly no: OK n means only that Redis holds n in memory${replicas}; ` +
      'a restart of Redis loses every value written since its last RDB snapshot';
    if (options.allowVolatile) return { level: 'warn', message: volatile };
    return {
      level: 'refuse',
      message:
        `${volatile}. Turn on appendonly (CONFIG SET appendonly yes, and in redis.conf), ` +
        'or start with --allow-volatile-store to accept that',
    };
  }
  const fsync =
    persistence.appendfsync === null
      ? 'Redis wrote n to its append-only file; its appendfsync policy could not be read ' +
        '(CONFIG GET is refused), so what survives a crash of its machine is not known'
      : (FSYNC[persistence.appendfsync] ??
        `Redis wrote n to its append-only file (appendfsync ${persistence.appendfsync})`);
  return { level: 'info', message: `OK n means ${fsync}${replicas}` };
}
