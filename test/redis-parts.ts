import t from 'tap';
import { FakeClock } from './fixtures/fake-clock.js';
import { Claims } from '../src/store/redis/claims.js';
import { reconnectDelay } from '../src/store/redis/client.js';
import { durability, readPersistence } from '../src/store/redis/durability.js';
import { StorageError, toStorageError } from '../src/store/redis/errors.js';
import { CommandGate } from '../src/store/redis/gate.js';
import { ReplicaWait, WAIT_REPLY_MARGIN_MS } from '../src/store/redis/replicas.js';
import {
  idKey,
  idOfKey,
  parseAnnouncement,
  parseClaimReply,
  parseSetReply,
} from '../src/store/redis/scripts.js';
import { parseRedisUrl } from '../src/store/redis/url.js';
import { REDIS_STORE_DEFAULTS } from '../src/limits.js';
import type { Holder } from '../src/store/value-store.js';

// The Redis store's pure parts, without a Redis: test/redis-store.ts runs them against one.

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (err: { code?: string }) => err.code ?? 'no code',
  );

t.test('parseRedisUrl', async (t) => {
  t.match(parseRedisUrl('redis://127.0.0.1'), {
    host: '127.0.0.1',
    port: 6379,
    db: 0,
    username: undefined,
    password: undefined,
    tls: false,
    description: 'redis://127.0.0.1:6379/0',
  });
  t.match(parseRedisUrl('rediss://us%40r:p%40ss%3Aw@redis.example:6380/3'), {
    host: 'redis.example',
    port: 6380,
    db: 3,
    username: 'us@r',
    password: 'p@ss:w',
    tls: true,
    description: 'rediss://us%40r@redis.example:6380/3',
  });
  t.match(parseRedisUrl('redis://:secret@[::1]:7000/'), {
    host: '::1',
    username: undefined,
    password: 'secret',
    description: 'redis://[::1]:7000/0',
  });
  const refused = (url: string, why: RegExp) => t.throws(() => parseRedisUrl(url), why, url);
  refused('redis//:secret@host', /not a valid URL/);
  refused('http://host/0', /must start with redis:\/\/ or rediss:\/\/, not http:/);
  refused('redis:///0', /names no host/);
  refused('redis://host/x', /database number/);
  refused('redis://host/0/1', /database number/);
  refused('redis://host/01', /database number/);
  refused('redis://host/0?password=x', /no \?query/);
  refused('redis://host/0#x', /no \?query/);
  try {
    parseRedisUrl('redis//user:hunter2@host');
  } catch (err) {
    t.notMatch((err as Error).message, /hunter2/, 'the password is never echoed');
  }
});

t.test('keys, script replies and announcements', async (t) => {
  t.equal(idKey('a.b-c_9'), 'parity:{a.b-c_9}');
  t.equal(idOfKey('parity:{a.b-c_9}'), 'a.b-c_9');
  t.equal(idOfKey('parity:{bad id}'), null);
  t.equal(idOfKey('other'), null);
  t.same(parseClaimReply([0, 5]), { kind: 'full', size: 5 });
  t.same(parseClaimReply([1, 5, 2, 42]), { kind: 'claimed', size: 5, epoch: 2, value: 42 });
  t.same(parseSetReply([1, 5]), { kind: 'stored', size: 5 });
  t.same(parseSetReply([0, 3, 'tok']), { kind: 'taken', epoch: 3, token: 'tok' });
  t.same(parseSetReply([2]), { kind: 'stale' });
  for (const bad of ['OK', [1, 5, 2], [1, 5, 2, '42'], [0], [3], [0, 1.5]]) {
    t.throws(() => parseClaimReply(bad), { code: 'EBADREPLY' }, JSON.stringify(bad));
  }
  for (const bad of [null, [1], [0, 3, 4], [2, 1], [4]]) {
    t.throws(() => parseSetReply(bad), { code: 'EBADREPLY' }, JSON.stringify(bad));
  }
  t.same(parseAnnouncement('alice 12 node-1:ab cd'), {
    id: 'alice',
    epoch: 12,
    token: 'node-1:ab cd',
  });
  t.equal(parseAnnouncement('alice 0 tok'), null);
  t.equal(parseAnnouncement('a/b 1 tok'), null);
  t.equal(parseAnnouncement('alice 1'), null);
});

t.test('toStorageError gives every failure a stable code', async (t) => {
  const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
  const mine = new StorageError('EBUSY', 'x');
  t.equal(toStorageError(mine), mine);
  t.equal(toStorageError(reply('MISCONF Errors writing to the AOF file')).code, 'MISCONF');
  t.equal(toStorageError(reply('READONLY You cannot write')).code, 'READONLY');
  t.equal(toStorageError(reply('weird')).code, 'EREDIS');
  const retries = Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' });
  t.equal(toStorageError(retries).code, 'ECONNRESET');
  t.equal(toStorageError(new Error('Connection is closed.')).code, 'ECONNRESET');
  t.equal(toStorageError(new Error('Command aborted due to connection close')).code, 'ECONNRESET');
  const offline = new Error("Stream isn't writeable and enableOfflineQueue options is false");
  t.equal(toStorageError(offline).code, 'EREDISDOWN');
  t.equal(toStorageError(Object.assign(new Error('x'), { code: 'EPIPE' })).code, 'EPIPE');
  t.equal(toStorageError(new Error('x')).code, 'EREDIS');
  t.equal(toStorageError('a string').code, 'EREDIS');
  t.equal(toStorageError(undefined).message, 'undefined');
});

t.test('CommandGate', async (t) => {
  t.test('counts a command until it settles, not until its deadline', async (t) => {
    const clock = new FakeClock();
    const gate = new CommandGate({ clock, timeoutMs: 100, maxPending: 2 });
    let answer!: (v: string) => void;
    const first = gate.deadline(gate.send(() => new Promise<string>((r) => (answer = r))));
    const second = gate.send(() => Promise.reject(new Error('no')));
    await t.rejects(second, /no/);
    t.equal(gate.pending, 1, 'a failed command is no longer counted');
    clock.advance(100);
    t.equal(await codeOf(first), 'ETIMEDOUT');
    t.equal(gate.pending, 1, 'still counted after its deadline');
    gate.send(() => new Promise(() => {}));
    t.throws(() => gate.send(() => Promise.resolve()), { code: 'EBUSY' }, 'refused unsent');
    const refusal = (): unknown => {
      try {
        gate.send(() => Promise.resolve());
      } catch (err) {
        return err;
      }
    };
    const busy = refusal();
    t.match(busy, { code: 'EBUSY' });
    t.equal(
      refusal(),
      busy,
      'every refusal is one shared error, not one built (with a stack) each',
    );
    answer('late');
    await Promise.resolve();
    t.equal(gate.pending, 1);
    t.equal(await gate.send(() => Promise.resolve('ok')), 'ok');
  });
  t.test('deadline passes an outcome through and clears its timer', async (t) => {
    const clock = new FakeClock();
    const gate = new CommandGate({ clock, timeoutMs: 100, maxPending: 10 });
    t.equal(await gate.deadline(Promise.resolve(1)), 1);
    await t.rejects(gate.deadline(Promise.reject(new Error('bad'))), /bad/);
    t.equal(clock.pending, 0);
  });
  t.test('drained: at once, when the last settles, or after the wait', async (t) => {
    const clock = new FakeClock();
    const gate = new CommandGate({ clock, timeoutMs: 100, maxPending: 10 });
    await gate.drained(50);
    let answer!: () => void;
    void gate.send(() => new Promise<void>((r) => (answer = r)));
    const drained = gate.drained(50);
    answer();
    await drained;
    t.equal(clock.pending, 0, 'its timer is cleared');
    void gate.send(() => new Promise(() => {}));
    const given = gate.drained(50);
    clock.advance(50);
    await given;
    t.equal(gate.pending, 1, 'gave up waiting');
  });
});

t.test('ReplicaWait', async (t) => {
  const clock = new FakeClock();
  const calls: [number, number][] = [];
  let acked = 1;
  let fail: Error | null = null;
  const wait = new ReplicaWait({
    replicas: 1,
    timeoutMs: 1_000,
    clock,
    wait: (replicas, ms) => {
      calls.push([replicas, ms]);
      if (fail !== null) throw fail;
      return acked === -1 ? Promise.reject(new Error('gone')) : Promise.resolve(acked);
    },
  });
  const a = wait.after();
  clock.advance(100);
  const b = wait.after();
  t.equal(a, b, 'one WAIT for the writes of one turn');
  await Promise.all([a, b]);
  t.same(calls, [[1, 1_000 - 100 - WAIT_REPLY_MARGIN_MS]]);
  acked = 0;
  t.equal(await codeOf(wait.after()), 'EREPLICAS');
  acked = -1;
  await t.rejects(wait.after(), /gone/);
  fail = new StorageError('EBUSY', 'x');
  t.equal(await codeOf(wait.after()), 'EBUSY', 'a WAIT that could not be sent');
  t.equal(calls.length, 4);
  const none = new ReplicaWait({
    replicas: 0,
    timeoutMs: 1,
    clock,
    wait: () => Promise.reject(new Error('no')),
  });
  await none.after();
});

t.test('reconnectDelay doubles up to its maximum', async (t) => {
  const { reconnectMinMs, reconnectMaxMs } = REDIS_STORE_DEFAULTS;
  t.equal(reconnectDelay(1), reconnectMinMs);
  t.equal(reconnectDelay(2), 2 * reconnectMinMs);
  t.equal(reconnectDelay(1_000), reconnectMaxMs);
});

t.test('persistence settings and what OK means with them', async (t) => {
  const replyError = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
  const reader = (answers: Record<string, unknown>) => ({
    call: async (...args: string[]) => {
      const answer = answers[args.join(' ')];
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
  t.same(
    await readPersistence(
      reader({
        'CONFIG GET appendonly': ['appendonly', 'yes'],
        'CONFIG GET appendfsync': ['appendfsync', 'everysec'],
      }),
    ),
    { appendonly: true, appendfsync: 'everysec' },
  );
  const noConfig = replyError("ERR unknown command 'CONFIG'");
  t.same(
    await readPersistence(
      reader({
        'CONFIG GET appendonly': noConfig,
        'INFO persistence': '# Persistence\r\nloading:0\r\naof_enabled:0\r\n',
      }),
    ),
    { appendonly: false, appendfsync: null },
  );
  await t.rejects(
    readPersistence(reader({ 'CONFIG GET appendonly': noConfig, 'INFO persistence': '' })),
    /no aof_enabled/,
  );
  await t.rejects(
    readPersistence(reader({ 'CONFIG GET appendonly': [] })),
    /CONFIG GET appendonly answered \[\]/,
  );
  await t.rejects(
    readPersistence(reader({ 'CONFIG GET appendonly': new Error('Connection is closed.') })),
    /Connection is closed/,
  );

  const verdict = (appendonly: boolean, appendfsync: string | null, waitReplicas = 0) =>
    durability({ appendonly, appendfsync }, { waitReplicas, allowVolatile: false });
  t.match(verdict(true, 'always'), { level: 'info', message: /survives kill -9 .* power loss/ });
  t.match(verdict(true, 'everysec'), { level: 'info', message: /last second/ });
  t.match(verdict(true, 'no'), { level: 'info', message: /the OS writes it to disk/ });
  t.match(verdict(true, null), { level: 'info', message: /could not be read/ });
  t.match(verdict(true, 'sometimes'), { message: /\(appendfsync sometimes\)$/ });
  t.match(verdict(true, 'always', 2), { message: /, and 2 replica\(s\) acknowledged/ });
  t.match(verdict(false, 'always'), { level: 'refuse', message: /--allow-volatile-store/ });
  t.match(
    durability(
      { appendonly: false, appendfsync: 'always' },
      { waitReplicas: 0, allowVolatile: true },
    ),
    { level: 'warn', message: /only that Redis holds n in memory/ },
  );
});

t.test('Claims: epochs order claims whose replies and announcements race', async (t) => {
  const holder = (token: string) => {
    const h = { token, told: 0, takenOver: () => void h.told++ };
    return h satisfies Holder;
  };
  t.test('a claim announced before our reply, older than ours, is ignored', async (t) => {
    const claims = new Claims();
    const h = holder('mine');
    claims.begin('a', h);
    claims.announced('a', 3, 'older');
    claims.announced('a', 2, 'oldest');
    claims.announced('a', 4, 'mine'); // our own announcement
    claims.confirmed('a', h, 4, 7);
    t.equal(h.told, 0);
    t.equal(claims.peek('a'), 7);
    claims.announced('a', 4, 'same-epoch?');
    claims.announced('a', 3, 'late and older');
    t.equal(h.told, 0);
    claims.announced('a', 5, 'newer');
    t.equal(h.told, 1, 'a newer one takes over');
    t.equal(claims.peek('a'), undefined);
    claims.announced('a', 6, 'newest');
    t.equal(h.told, 1, 'told once');
  });
  t.test('…and one newer than ours takes over when our reply comes', async (t) => {
    const claims = new Claims();
    const h = holder('mine');
    claims.begin('a', h);
    claims.announced('a', 5, 'newer');
    claims.announced('a', 3, 'older');
    t.equal(h.told, 0);
    claims.confirmed('a', h, 4, 0);
    t.equal(h.told, 1);
    t.equal(claims.size, 0);
  });
  t.test('a failed claim is taken over by anything announced', async (t) => {
    const claims = new Claims();
    const h = holder('mine');
    claims.begin('a', h);
    claims.announced('a', 1, 'other');
    claims.failed('a', h);
    t.equal(h.told, 1, 'announced while it was in flight');
    const g = holder('again');
    claims.begin('b', g);
    claims.failed('b', g);
    claims.failed('b', g);
    t.equal(g.told, 0);
    claims.announced('b', 1, 'other');
    t.equal(g.told, 1, 'announced after');
  });
  t.test('a local claim replaces the entry; the old holder is told once', async (t) => {
    const claims = new Claims();
    const old = holder('old');
    const next = holder('next');
    claims.begin('a', old);
    claims.confirmed('a', old, 1, 5);
    claims.begin('a', next);
    t.equal(old.told, 1);
    claims.confirmed('a', old, 1, 5); // a late reply for the old holder changes nothing
    claims.stored('a', old, 9);
    claims.refused('a', old, 'x');
    claims.failed('a', old);
    claims.release('a', old);
    t.equal(old.told, 1);
    t.equal(next.told, 0);
    t.equal(claims.size, 1, 'the new holder stays');
    t.equal(claims.peek('a'), undefined, 'nothing read for it yet');
    claims.confirmed('a', next, 2, 5);
    claims.stored('a', next, 6);
    t.equal(claims.peek('a'), 6);
    claims.refused('a', next, 'elsewhere');
    t.equal(next.told, 1, 'a refused write tells its holder');
    claims.announced('zzz', 1, 'unknown id');
    claims.release('a', next);
    t.equal(claims.size, 0);
  });
});
