import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCerts } from './fixtures/certs.js';
import { redisMissing, startRedis, type TestRedis } from './fixtures/redis.js';
import { unusedPort, type TestLike } from './fixtures/server.js';
import { openRedisStore, type RedisStoreOptions } from '../src/store/redis/redis-store.js';
import type { Holder } from '../src/store/value-store.js';

// Every test runs against a real redis-server (test/fixtures/redis.ts); two stores on one Redis
// stand for two Parity servers.

const skip = redisMissing();

t.setTimeout(90_000); // ~15 s on an idle machine; real processes, so more on a busy one

type TestHolder = Holder & { told: number; toldAt: Promise<number> };

let tokens = 0;
function holder(name = 'h'): TestHolder {
  let resolve!: (at: number) => void;
  const h: TestHolder = {
    token: `${name}:${process.pid}:${++tokens}`,
    told: 0,
    toldAt: new Promise<number>((r) => (resolve = r)),
    takenOver() {
      h.told++;
      resolve(performance.now());
    },
  };
  return h;
}

async function open(t: TestLike, url: string, options: Partial<RedisStoreOptions> = {}) {
  const store = await openRedisStore(url, {
    maxIds: 1_000,
    timeoutMs: 1_000,
    waitReplicas: 0,
    allowVolatile: false,
    ...options,
  });
  t.teardown(() => store.close());
  return store;
}

/** The value field of `id` as Redis holds it ('' if none). */
const valueIn = (redis: TestRedis, id: string) => redis.cli('HGET', `parity:{${id}}`, 'value');

/** The code a rejected promise carries ('resolved' if it did not reject). */
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (err: { code?: string }) => err.code ?? 'no code',
  );

t.test('claim returns 0, then the stored value, on any server', { skip }, async (t) => {
  const redis = await startRedis(t);
  const one = await open(t, redis.url);
  const two = await open(t, redis.url);
  t.equal(one.description, redis.url);
  const alice = holder('alice');
  t.equal(await one.claim('alice', alice), 0);
  t.equal(one.peek('alice'), 0, 'the live view sees what the claim read');
  await one.set('alice', alice, 42);
  t.equal(one.peek('alice'), 42);
  t.equal(valueIn(redis, 'alice'), '42', 'in Redis once set resolves');
  t.equal(one.size, 1);
  t.equal(await two.claim('alice', holder('alice')), 42, 'another server sees it');
  t.equal(await one.claim('bob', holder('bob')), 0);
  t.equal(one.size, 2, 'size is the last count read');
  t.equal(one.peek('carol'), undefined, 'unknown here');
});

t.test('a stale holder never overwrites a newer claim', { skip }, async (t) => {
  const redis = await startRedis(t);
  const one = await open(t, redis.url);
  const two = await open(t, redis.url);
  const old = holder('old');
  await one.claim('alice', old);
  await one.set('alice', old, 5);
  const started = performance.now();
  const next = holder('new');
  t.equal(await two.claim('alice', next), 5);
  const toldAt = await Promise.race([old.toldAt, sleep(1_000).then(() => NaN)]);
  t.ok(toldAt - started < 1_000, `told over pub/sub in ${(toldAt - started).toFixed(1)} ms`);
  t.equal(await codeOf(one.set('alice', old, 6)), 'TAKEN_OVER', 'its next write is refused');
  t.equal(old.told, 1, 'told once');
  t.equal(valueIn(redis, 'alice'), '5', 'nothing was overwritten');
  await two.set('alice', next, 7);
  t.equal(await codeOf(one.set('alice', old, 8)), 'TAKEN_OVER', 'still refused, however late');
  t.equal(valueIn(redis, 'alice'), '7');
  t.equal(one.peek('alice'), undefined, 'no longer held here');
  t.equal(next.told, 0);
});

t.test(
  'a holder whose takeover message was lost is told at its next write',
  { skip },
  async (t) => {
    const redis = await startRedis(t);
    const one = await open(t, redis.url);
    const old = holder('old');
    await one.claim('alice', old);
    // Another server's claim, made behind the store's back: no announcement reaches it.
    redis.cli('HSET', 'parity:{alice}', 'token', 'elsewhere', 'epoch', '9');
    t.equal(await codeOf(one.set('alice', old, 6)), 'TAKEN_OVER');
    t.equal(old.told, 1, 'told by the refused write');
    t.equal(valueIn(redis, 'alice'), '');
  },
);

t.test('a local takeover tells the old holder at once', { skip }, async (t) => {
  const redis = await startRedis(t);
  const store = await open(t, redis.url);
  const old = holder('old');
  await store.claim('alice', old);
  const next = holder('new');
  const claimed = store.claim('alice', next);
  t.equal(old.told, 1, 'told before the claim reached Redis');
  await claimed;
  t.equal(await codeOf(store.set('alice', old, 1)), 'TAKEN_OVER');
  t.equal(old.told, 1, 'told once');
  store.release('alice', old); // the old connection closing changes nothing for the new one
  await store.set('alice', next, 2);
  t.equal(store.peek('alice'), 2);
  store.release('alice', next);
  t.equal(store.peek('alice'), undefined, 'released');
});

t.test('a write sent right after a claim is applied after it', { skip }, async (t) => {
  const redis = await startRedis(t);
  const store = await open(t, redis.url);
  const other = await open(t, redis.url);
  await other.claim('alice', holder());
  const h = holder();
  const claimed = store.claim('alice', h);
  const written = store.set('alice', h, 9);
  t.equal(await claimed, 0);
  await written;
  t.equal(valueIn(redis, 'alice'), '9');
  t.equal(h.told, 0, 'the earlier claim elsewhere does not take over the later one');
});

t.test('concurrent claims across servers leave exactly one holder', { skip }, async (t) => {
  const redis = await startRedis(t);
  const stores = [await open(t, redis.url), await open(t, redis.url), await open(t, redis.url)];
  const holders = Array.from({ length: 30 }, (_, i) => holder(`h${i}`));
  await Promise.all(holders.map((h, i) => stores[i % 3]!.claim('alice', h)));
  const results = await Promise.all(
    holders.map((h, i) =>
      stores[i % 3]!.set('alice', h, i).then(
        () => 'ok',
        (err: Error) => err.name,
      ),
    ),
  );
  t.equal(results.filter((r) => r === 'ok').length, 1, 'one write applied');
  const winner = results.indexOf('ok');
  t.equal(valueIn(redis, 'alice'), String(winner));
  // Every other holder is told, by announcement or by its refused write; the winner is not.
  await Promise.all(holders.filter((_, i) => i !== winner).map((h) => h.toldAt));
  t.equal(holders[winner]!.told, 0);
});

t.test('takeovers across servers are announced promptly', { skip }, async (t) => {
  const redis = await startRedis(t);
  const one = await open(t, redis.url);
  const two = await open(t, redis.url);
  const ms: number[] = [];
  for (let i = 0; i < 200; i++) {
    const old = holder();
    await one.claim(`id${i}`, old);
    const started = performance.now();
    await two.claim(`id${i}`, holder());
    ms.push((await old.toldAt) - started);
  }
  ms.sort((a, b) => a - b);
  const p99 = ms[Math.floor(ms.length * 0.99)]!;
  t.ok(p99 < 100, `p99 ${p99.toFixed(1)} ms from the new claim to the old holder told`);
});

t.test('maxIds: a new id past it is refused, known ids keep working', { skip }, async (t) => {
  const redis = await startRedis(t);
  const one = await open(t, redis.url, { maxIds: 2 });
  const two = await open(t, redis.url, { maxIds: 2 });
  const a = holder();
  await one.claim('a', a);
  await two.claim('b', holder());
  const c = holder();
  t.equal(await codeOf(one.claim('c', c)), 'ID_LIMIT', 'counted across servers');
  t.equal(await codeOf(one.set('c', c, 1)), 'TAKEN_OVER', 'a refused claim holds nothing');
  // Nobody took it: the holder is not told it was taken over (that ended the connection).
  t.equal(c.told, 0, 'and it is not taken over');
  t.equal(one.size, 2);
  t.equal(await two.claim('a', holder()), 0, 'a known id');
  t.equal(redis.cli('DBSIZE'), '2');
});

t.test('Redis persistence settings decide what OK means', { skip }, async (t) => {
  t.test('appendonly no is refused', async (t) => {
    const redis = await startRedis(t, { appendonly: 'no' });
    await t.rejects(open(t, redis.url), /appendonly no.*--allow-volatile-store/);
  });
  t.test('...unless allowed, with a warning', async (t) => {
    const redis = await startRedis(t, { appendonly: 'no' });
    const warned: string[] = [];
    const store = await open(t, redis.url, {
      allowVolatile: true,
      warn: (_, message) => warned.push(message),
    });
    t.match(warned, [/appendonly no: OK n means only that Redis holds n in memory/]);
    t.equal(store.durability, warned[0]);
  });
  t.test('appendfsync everysec is reported', async (t) => {
    const redis = await startRedis(t, { appendfsync: 'everysec' });
    const told: Record<string, unknown>[] = [];
    await open(t, redis.url, { info: (details, message) => told.push({ ...details, message }) });
    t.match(told, [{ appendonly: true, appendfsync: 'everysec', message: /last second of OKs/ }]);
  });
  t.test('appendfsync always is reported', async (t) => {
    const redis = await startRedis(t);
    const store = await open(t, redis.url);
    t.match(store.durability, /fsynced it \(appendfsync always\): it survives kill -9/);
  });
  t.test('without CONFIG, INFO says whether AOF is on; a user and password', async (t) => {
    const redis = await startRedis(t, {
      args: [
        ...['--rename-command', 'CONFIG', ''],
        ...['--user', 'default', 'off'],
        ...['--user', 'parity', 'on', '>s3cret', '~*', '&*', '+@all'],
      ],
    });
    const url = `redis://parity:s3cret@127.0.0.1:${redis.port}/0`;
    const store = await open(t, url);
    t.equal(store.description, `redis://parity@127.0.0.1:${redis.port}/0`, 'no password');
    t.match(store.durability, /appendfsync policy could not be read/);
    await t.rejects(
      open(t, `redis://parity:wrong@127.0.0.1:${redis.port}/0`),
      /^cannot use the Redis store redis:\/\/parity@127\.0\.0\.1:\d+\/0: WRONGPASS/,
    );
  });
});

t.test('a Redis that refuses SCRIPT LOAD: every write is ERR STORAGE', { skip }, async (t) => {
  const redis = await startRedis(t, {
    args: [
      ...['--user', 'default', 'off'],
      ...['--user', 'parity', 'on', '>s3cret', '~*', '&*', '+@all', '-script|load'],
    ],
  });
  const warned: string[] = [];
  const store = await open(t, `redis://parity:s3cret@127.0.0.1:${redis.port}/0`, {
    warn: (_, m) => warned.push(m),
  });
  t.equal(await codeOf(store.claim('alice', holder())), 'NOSCRIPT', "Redis's own code");
  t.same(warned, ['Redis refused SCRIPT LOAD', 'Redis refused SCRIPT LOAD']);
});

t.test('--redis-wait: OK only once replicas have the write', { skip }, async (t) => {
  const primary = await startRedis(t);
  t.test('with no replica, a write is ERR STORAGE (EREPLICAS)', async (t) => {
    const store = await open(t, primary.url, { waitReplicas: 1, timeoutMs: 600 });
    t.match(store.durability, /1 replica\(s\) acknowledged/);
    const h = holder();
    t.equal(await codeOf(store.claim('alice', h)), 'EREPLICAS');
    t.equal(await codeOf(store.set('alice', h, 3)), 'EREPLICAS');
    t.equal(valueIn(primary, 'alice'), '3', 'applied on the primary, but not acknowledged');
  });
  t.test('with a replica, writes are acknowledged', async (t) => {
    // A full sync at once, instead of the 5 s Redis waits for more replicas to share it.
    primary.cli('CONFIG', 'SET', 'repl-diskless-sync-delay', '0');
    const replica = await startRedis(t, {
      args: ['--replicaof', '127.0.0.1', String(primary.port)],
    });
    const store = await open(t, primary.url, { waitReplicas: 1, timeoutMs: 2_000 });
    const h = holder();
    // The replica may still be syncing: retry the claim until it is in step.
    while ((await codeOf(store.claim('bob', h))) !== 'resolved') await sleep(50);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.set('bob', h, i)));
    t.equal(replica.cli('HGET', 'parity:{bob}', 'value'), '49', 'the replica has the last one');
  });
});

t.test('Redis killed and restarted: ERR STORAGE meanwhile, no OK lost', { skip }, async (t) => {
  const redis = await startRedis(t);
  const signal = () => {
    let resolve!: () => void;
    return Object.assign(new Promise<void>((r) => (resolve = r)), { resolve: () => resolve() });
  };
  const lost = signal();
  const reconnected = signal();
  const store = await open(t, redis.url, {
    timeoutMs: 500,
    warn: (_, m) => /lost the connection to Redis/.test(m) && lost.resolve(),
    info: (_, m) => /reconnected to Redis/.test(m) && reconnected.resolve(),
  });
  // 20 writers, each sending its next value as soon as the last is answered.
  const holders = new Map<string, TestHolder>();
  const acked = new Map<string, number>();
  const tried = new Map<string, number>();
  const codes = new Set<string>();
  const busy = signal(); // enough OKs before the kill
  let oks = 0;
  let running = true;
  const writers = Array.from({ length: 20 }, async (_, w) => {
    const id = `w${w}`;
    const h = holder(id);
    holders.set(id, h);
    await store.claim(id, h);
    for (let n = 1; running; n = (n % 99) + 1) {
      tried.set(id, n);
      try {
        await store.set(id, h, n);
        acked.set(id, n);
        if (++oks === 200) busy.resolve();
      } catch (err) {
        codes.add((err as { code: string }).code);
        await sleep(5); // not a hot loop while Redis is down
      }
    }
  });
  await busy;
  await redis.kill9();
  await lost; // every write in flight has now failed: none can still be acknowledged
  const ackedAtKill = new Map(acked);
  const sentAtKill = new Map(tried); // later tries fail unsent
  t.equal(await codeOf(store.set('w0', holders.get('w0')!, 1)), 'EREDISDOWN', 'fails fast');
  await sleep(300); // the outage, with the writers failing
  running = false;
  await Promise.all(writers);
  t.same(acked, ackedAtKill, 'no OK while Redis was down');
  t.ok(codes.has('EREDISDOWN'), `writes failed: ${[...codes].join(', ')}`);
  t.ok(
    [...codes].every((c) => ['EREDISDOWN', 'ECONNRESET'].includes(c)),
    'only as storage errors (never TAKEN_OVER)',
  );

  await redis.restart();
  let lostOks = 0;
  for (const [id, value] of ackedAtKill) {
    const stored = Number(valueIn(redis, id));
    // The write in flight at the kill may or may not have been applied; an OK'd one always was.
    if (stored !== value && stored !== sentAtKill.get(id)) lostOks++;
  }
  t.equal(lostOks, 0, `all ${ackedAtKill.size} last OKs survived the kill`);

  await reconnected; // the same store, not reopened
  await Promise.all([...holders].map(([id, h]) => store.set(id, h, 42)));
  t.equal(valueIn(redis, 'w7'), '42', 'writes work again');

  // The subscriber reconnects on its own schedule; once it has resubscribed, a claim on another
  // server is announced again. Claim until one is: each claim is newer than the last.
  const other = await open(t, redis.url);
  const w3 = holders.get('w3')!;
  while (w3.told === 0) {
    await other.claim('w3', holder());
    await Promise.race([w3.toldAt, sleep(100)]);
  }
  t.pass('takeovers are announced again after the reconnect');
});

t.test('Redis frozen: ETIMEDOUT, bounded, then recovers', { skip }, async (t) => {
  const redis = await startRedis(t);
  const store = await open(t, redis.url, { timeoutMs: 300, maxPending: 50 });
  const h = holder();
  await store.claim('alice', h);
  await store.set('alice', h, 1);
  redis.stop();
  t.teardown(() => redis.cont());
  const started = performance.now();
  t.equal(await codeOf(store.set('alice', h, 2)), 'ETIMEDOUT');
  const ms = performance.now() - started;
  t.ok(ms >= 290 && ms < 1_000, `after ${ms.toFixed(0)} ms`);
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => codeOf(store.set('alice', h, i % 100))),
  );
  t.ok(store.pending <= 50, `${store.pending} commands unanswered, at most 50`);
  t.equal(results.filter((c) => c === 'EBUSY').length, 151, 'the rest refused unsent');
  t.equal(results.filter((c) => c === 'ETIMEDOUT').length, 49);
  redis.cont();
  while (store.pending > 0) await sleep(10);
  await store.set('alice', h, 77);
  t.equal(valueIn(redis, 'alice'), '77', 'the newest acknowledged write is the value');
});

t.test('a write older than one already applied is refused', { skip }, async (t) => {
  const redis = await startRedis(t);
  const store = await open(t, redis.url);
  const h = holder();
  await store.claim('alice', h);
  await store.set('alice', h, 1);
  // As if a newer write of this holder had arrived first on another connection.
  redis.cli('HSET', 'parity:{alice}', 'seq', '1000000');
  t.equal(await codeOf(store.set('alice', h, 2)), 'ESTALE');
  t.equal(valueIn(redis, 'alice'), '1');
});

t.test('rediss:// speaks TLS', { skip }, async (t) => {
  const certs = makeCerts(t);
  const redis = await startRedis(t, { tls: { cert: certs.serverCert, key: certs.serverKey } });
  const { readFileSync } = await import('node:fs');
  const store = await open(t, redis.url, { tls: { ca: readFileSync(certs.caCert) } });
  t.equal(store.description, redis.url);
  const h = holder();
  await store.claim('alice', h);
  await store.set('alice', h, 4);
  t.equal(valueIn(redis, 'alice'), '4');
});

t.test('open fails with the reason, and leaves nothing running', { skip }, async (t) => {
  const port = await unusedPort();
  await t.rejects(
    open(t, `redis://127.0.0.1:${port}/0`),
    new RegExp(`^cannot use the Redis store redis://127.0.0.1:${port}/0: .*ECONNREFUSED`),
  );
  const redis = await startRedis(t);
  redis.stop();
  t.teardown(() => redis.cont());
  await t.rejects(open(t, redis.url, { openTimeoutMs: 200 }), /no answer within 200 ms/);
  await t.rejects(open(t, 'http://x'), /must start with redis:\/\/ or rediss:\/\//);
});

t.test('close waits for what is in flight; later calls are refused', { skip }, async (t) => {
  const redis = await startRedis(t);
  const store = await open(t, redis.url);
  const h = holder();
  await store.claim('alice', h);
  const written = store.set('alice', h, 3);
  await store.close();
  await written;
  t.equal(valueIn(redis, 'alice'), '3');
  t.equal(await codeOf(store.set('alice', h, 4)), 'ECLOSED');
  t.equal(await codeOf(store.claim('bob', holder())), 'ECLOSED');
  const reason = (p: Promise<unknown>) =>
    p.then(
      () => null,
      (err: unknown) => err,
    );
  const [one, two] = [
    await reason(store.set('alice', h, 5)),
    await reason(store.set('alice', h, 6)),
  ];
  t.match(one, { code: 'ECLOSED' });
  t.equal(one, two, 'refusals of unsent calls share one error while the reason holds');
  await store.close(); // again: nothing more
});
