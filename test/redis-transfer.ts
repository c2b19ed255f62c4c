import t from 'tap';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRecords } from '../src/store/journal-format.js';
import { readDurable } from '../src/store/recover.js';
import { lockStateFile } from '../src/store/state-lock.js';
import { openRedisStore } from '../src/store/redis/redis-store.js';
import { exportRedisToFile, importFileToRedis } from '../src/store/redis/transfer.js';
import { redisMissing, startRedis } from './fixtures/redis.js';
import { tempDir, unusedPort } from './fixtures/server.js';

const skip = redisMissing();

// 1M ids through Redis and back: well under a minute on an idle machine, more on a busy one.
t.setTimeout(180_000);

/** The 1M under `npm run test:soak` (PARITY_SOAK=1, which CI also runs); npm test 200k. */
const IDS = process.env.PARITY_SOAK ? 1_000_000 : 200_000;

t.test(`${IDS / 1000}k ids round-trip: state file -> Redis -> state file`, { skip }, async (t) => {
  // everysec: this is about the transfer; an fsync per batch would only make it slower.
  const redis = await startRedis(t, { appendfsync: 'everysec' });
  const dir = tempDir(t);
  const ids = IDS;
  // The state file's own layout, written directly: id-<i> holds i % 100.
  const lines = Array.from({ length: ids }, (_, i) => `  "id-${i}": ${i % 100}`);
  const from = join(dir, 'from.json');
  writeFileSync(from, `{\n${lines.join(',\n')}\n}\n`);

  let started = performance.now();
  t.same(await importFileToRedis(from, redis.url), { ids, written: ids, kept: 0 });
  const importMs = performance.now() - started;
  t.equal(redis.cli('DBSIZE'), String(ids));

  const to = join(dir, 'to.json');
  started = performance.now();
  t.same(await exportRedisToFile(redis.url, to), { ids, skipped: 0 });
  const exportMs = performance.now() - started;
  t.equal(statSync(to).mode & 0o777, 0o600, 'private');

  const back = await readDurable(to);
  t.equal(back.size, ids);
  let differ = 0;
  for (const [id, value] of back) if (Number(id.slice(3)) % 100 !== value) differ++;
  t.equal(differ, 0, 'every value came back');
  t.comment(`import ${importMs.toFixed(0)} ms, export ${exportMs.toFixed(0)} ms`);
});

t.test('import writes only values, and keeps what Redis has', { skip }, async (t) => {
  const redis = await startRedis(t);
  const store = await openRedisStore(redis.url, {
    maxIds: 100,
    timeoutMs: 1_000,
    waitReplicas: 0,
    allowVolatile: false,
  });
  t.teardown(() => store.close());
  let told = 0;
  const live = (token: string) => ({ token, takenOver: () => void told++ });
  // alice: claimed, no value yet. bob: claimed, with a value acknowledged by Redis.
  const alice = live('alice-1');
  const bob = live('bob-1');
  await store.claim('alice', alice);
  await store.claim('bob', bob);
  await store.set('bob', bob, 5);
  const before = redis.cli('HMGET', 'parity:{alice}', 'epoch', 'token');

  // The state file holds alice and bob; its journal adds carol (a restart reads both).
  const dir = tempDir(t);
  const path = join(dir, 'values.json');
  writeFileSync(path, '{\n  "alice": 1,\n  "bob": 2\n}\n');
  writeFileSync(`${path}.journal.1`, encodeRecords([['carol', 3]]));
  t.same(await importFileToRedis(path, redis.url), { ids: 3, written: 2, kept: 1 });

  t.equal(redis.cli('HGET', 'parity:{alice}', 'value'), '1');
  t.equal(redis.cli('HGET', 'parity:{bob}', 'value'), '5', "Redis's value is newer: kept");
  t.equal(redis.cli('HGET', 'parity:{carol}', 'value'), '3', 'from the journal');
  t.equal(redis.cli('HMGET', 'parity:{alice}', 'epoch', 'token'), before, 'the claim untouched');
  await store.set('alice', alice, 7);
  t.equal(told, 0, 'the live holder keeps its id and its writes');

  // Out again: keys without a value, and keys that are not an id, are skipped.
  await store.claim('dave', live('dave-1'));
  redis.cli('HSET', 'parity:{bad id}', 'value', '1');
  redis.cli('HSET', 'parity:{erin}', 'value', '100');
  redis.cli('SET', 'other', 'x');
  const out = join(dir, 'out.json');
  t.same(await exportRedisToFile(redis.url, out), { ids: 3, skipped: 3 });
  t.same(Object.fromEntries(await readDurable(out)), { alice: 7, bob: 5, carol: 3 });
});

t.test('export refuses to replace a state, and needs the lock', { skip }, async (t) => {
  const redis = await startRedis(t);
  const dir = tempDir(t);
  const empty = join(dir, 'empty.json');
  t.same(await exportRedisToFile(redis.url, empty), { ids: 0, skipped: 0 });
  t.same(Object.fromEntries(await readDurable(empty)), {});
  await t.rejects(exportRedisToFile(redis.url, empty), /already holds a state/);
  const journalOnly = join(dir, 'crashed.json');
  writeFileSync(`${journalOnly}.journal.3`, encodeRecords([['a', 1]]));
  await t.rejects(exportRedisToFile(redis.url, journalOnly), /already holds a state/);
  const locked = join(dir, 'locked.json');
  const lock = await lockStateFile(locked);
  t.teardown(() => lock.release());
  await t.rejects(exportRedisToFile(redis.url, locked), /in use by another Parity server/);
  const port = await unusedPort();
  await t.rejects(
    exportRedisToFile(`redis://127.0.0.1:${port}/0`, join(dir, 'new.json')),
    new RegExp(`^cannot connect to redis://127.0.0.1:${port}/0: .*ECONNREFUSED`),
  );
});

t.test('import needs the file, and fails on a Redis error', { skip }, async (t) => {
  const redis = await startRedis(t);
  const dir = tempDir(t);
  await t.rejects(importFileToRedis(join(dir, 'none.json'), redis.url), { code: 'ENOENT' });
  const path = join(dir, 'values.json');
  // 20 batches; three of them fail, the first failure is reported and stops the import.
  const lines = Array.from({ length: 20_000 }, (_, i) => `  "id-${i}": 1`);
  writeFileSync(path, `{\n${lines.join(',\n')}\n}\n`);
  for (const bad of ['id-0', 'id-1000', 'id-2000']) redis.cli('SET', `parity:{${bad}}`, 'string');
  await t.rejects(importFileToRedis(path, redis.url), /WRONGTYPE/);
  // One batch, failing: reported when the last batch is waited for.
  const one = join(dir, 'one.json');
  writeFileSync(one, '{ "id-0": 1 }\n');
  await t.rejects(importFileToRedis(one, redis.url), /WRONGTYPE/);
});

t.test('import refuses a state file a server is running on', { skip }, async (t) => {
  const redis = await startRedis(t);
  const path = join(tempDir(t), 'values.json');
  writeFileSync(path, '{ "a": 1 }\n');
  const lock = await lockStateFile(path); // what a running server holds
  await t.rejects(importFileToRedis(path, redis.url), /in use by another Parity server/);
  t.equal(redis.cli('DBSIZE'), '0', 'nothing was copied');
  await lock.release();
  t.same(await importFileToRedis(path, redis.url), { ids: 1, written: 1, kept: 0 });
  t.same(await importFileToRedis(path, redis.url), { ids: 1, written: 0, kept: 1 }, 'lock freed');
});
