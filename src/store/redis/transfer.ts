import type { Redis } from 'ioredis';
import { promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { makePrivateFolder } from '../../fs/private-folder.js';
import { realFilePath } from '../../fs/real-path.js';
import { REDIS_STORE_DEFAULTS } from '../../limits.js';
import { writeFileAtomic } from '../atomic-write.js';
import { listGenerations } from '../journal.js';
import { readDurable } from '../recover.js';
import { lockStateFile } from '../state-lock.js';
import { StateTable } from '../state-table.js';
import { redisClient } from './client.js';
import { idKey, idOfKey, ID_KEY_PREFIX } from './scripts.js';
import { parseRedisUrl } from './url.js';

/**
 * Keys asked of SCAN, and ids read or written by one script call: a million ids take a thousand
 * round trips, and one batch's reply is a few KiB.
 */
export const TRANSFER_BATCH = 1_000;

/**
 * Batches in flight at once: Redis answers one while the next is on its way, and with appendfsync
 * always one fsync covers every batch that arrived in the same turn of its event loop.
 */
export const TRANSFER_IN_FLIGHT = 8;

/** Runs up to `limit` batches at once; the first failure fails the transfer. */
class Window {
  #limit: number;
  #running = new Set<Promise<void>>();
  #failure: { err: unknown } | null = null;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Starts `batch`; waits while `limit` are running. */
  async add(batch: Promise<void>): Promise<void> {
    const running: Promise<void> = batch.then(
      () => void this.#running.delete(running),
      (err: unknown) => {
        this.#running.delete(running);
        this.#failure ??= { err };
      },
    );
    this.#running.add(running);
    if (this.#running.size >= this.#limit) await Promise.race(this.#running);
    if (this.#failure !== null) throw this.#failure.err;
  }

  /** Waits for every batch. */
  async done(): Promise<void> {
    await Promise.all(this.#running);
    if (this.#failure !== null) throw this.#failure.err;
  }
}

/*
 * One script call per batch of ids, not one command per id: ioredis costs 10-25 µs of this
 * process's CPU per command, 10-25 s per million ids each way, whatever the pipelining. A script
 * that takes a batch of keys is one command. It touches keys in many slots, so these run against a
 * single Redis (which is what openRedisStore connects to), not a Cluster, unlike CLAIM and SET.
 */
/** KEYS: ids' keys. Reply: each one's value, nil where it has none. */
const READ_VALUES = `
local values = {}
for i = 1, #KEYS do values[i] = redis.call('HGET', KEYS[i], 'value') end
return values
`;
/** KEYS: ids' keys, ARGV: their values. Sets each value the key does not have; replies how many. */
const WRITE_MISSING_VALUES = `
local written = 0
for i = 1, #KEYS do written = written + redis.call('HSETNX', KEYS[i], 'value', ARGV[i]) end
return written
`;

export type TransferOptions = { tls?: ConnectionOptions };

const VALUE_RE = /^(0|[1-9][0-9]?)$/;

/** A connection for one transfer: no reconnect, so a dropped connection fails the transfer. */
async function connect(url: string, options: TransferOptions): Promise<Redis> {
  const target = parseRedisUrl(url);
  const client = redisClient(target, {
    name: 'parity-transfer',
    connectTimeoutMs: REDIS_STORE_DEFAULTS.openTimeoutMs,
    tls: options.tls,
    reconnect: false,
  });
  let reason = 'the connection closed';
  client.on('error', (err: Error) => (reason = err.message));
  try {
    await client.connect();
  } catch {
    client.disconnect();
    throw new Error(`cannot connect to ${target.description}: ${reason}`);
  }
  return client;
}

export type ExportResult = {
  /** Ids written to the state file. */
  ids: number;
  /** Keys of ours without a value (claimed, never written) or with one that is not 0-99. */
  skipped: number;
};

/**
 * Writes every id's value in Redis to a new state file at `statePath` (mode 0600, written
 * atomically), which a file-store server then starts from. Refuses a path where a state file or
 * a journal already is (that data would be lost), and takes the state lock, so no server runs on
 * it meanwhile. SCAN returns every key that exists for the whole export, so for an exact copy
 * stop the servers that write to Redis first; a value written during the export may or may not be
 * in the file.
 */
export async function exportRedisToFile(
  url: string,
  statePath: string,
  options: TransferOptions = {},
): Promise<ExportResult> {
  await makePrivateFolder(dirname(statePath));
  const lock = await lockStateFile(statePath);
  try {
    const realPath = await realFilePath(statePath);
    const existing = await fsp.stat(realPath).then(
      () => true,
      () => false,
    );
    if (existing || (await listGenerations(realPath, fsp)).length > 0) {
      throw new Error(`${statePath} already holds a state; export writes a new one`);
    }
    const redis = await connect(url, options);
    try {
      const table = new StateTable();
      let skipped = 0;
      const read = async (keys: string[]) => {
        const values = (await redis.eval(READ_VALUES, keys.length, ...keys)) as unknown[];
        keys.forEach((key, i) => {
          const id = idOfKey(key);
          const value = values[i];
          if (id === null || typeof value !== 'string' || !VALUE_RE.test(value)) skipped++;
          else table.set(id, Number(value)); // SCAN may return a key twice: set, not add
        });
      };
      const window = new Window(TRANSFER_IN_FLIGHT);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(
          cursor,
          'MATCH',
          `${ID_KEY_PREFIX}*`,
          'COUNT',
          TRANSFER_BATCH,
          'TYPE',
          'hash',
        );
        cursor = next;
        if (keys.length > 0) await window.add(read(keys));
      } while (cursor !== '0');
      await window.done();
      await writeFileAtomic(realPath, table.serialize());
      return { ids: table.size, skipped };
    } finally {
      redis.disconnect();
    }
  } finally {
    await lock.release();
  }
}

export type ImportResult = {
  /** Ids in the state file. */
  ids: number;
  /** Ids whose value was written to Redis. */
  written: number;
  /** Ids that already had a value in Redis, which was kept. */
  kept: number;
};

/**
 * Writes every value of the state file at `statePath` (checkpoint and journal, as a restart
 * would read them) into Redis. Only the `value` field is written, and only where the id has none
 * (HSETNX): a value already in Redis was acknowledged by a Redis-backed server and is newer than
 * the file, so it is kept; a claim's epoch and token are never touched, so a live holder keeps its
 * id and its writes keep working. Running it again writes nothing new. It does not count toward
 * or check `--max-ids`. Like export, it refuses a state file a server is running on.
 */
export async function importFileToRedis(
  statePath: string,
  url: string,
  options: TransferOptions = {},
): Promise<ImportResult> {
  const realPath = await realFilePath(statePath);
  await fsp.stat(realPath); // a missing file is an error here, not an empty state
  // The state lock, held only while reading: a server still running on the file would go on
  // acknowledging values after the copy, and they would be silently missing from Redis.
  const lock = await lockStateFile(statePath);
  let table: Awaited<ReturnType<typeof readDurable>>;
  try {
    table = await readDurable(realPath);
  } finally {
    await lock.release();
  }
  const redis = await connect(url, options);
  try {
    let written = 0;
    const write = async (keys: string[], values: string[]) => {
      const n = await redis.eval(WRITE_MISSING_VALUES, keys.length, ...keys, ...values);
      written += n as number; // not `written += await …`, which would read `written` before the wait
    };
    const window = new Window(TRANSFER_IN_FLIGHT);
    let keys: string[] = [];
    let values: string[] = [];
    for (const [id, value] of table) {
      keys.push(idKey(id));
      values.push(String(value));
      if (keys.length < TRANSFER_BATCH) continue;
      await window.add(write(keys, values));
      keys = [];
      values = [];
    }
    if (keys.length > 0) await window.add(write(keys, values));
    await window.done();
    return { ids: table.size, written, kept: table.size - written };
  } finally {
    redis.disconnect();
  }
}
