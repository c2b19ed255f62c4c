import t from 'tap';
import {
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';
import { readDurable } from '../src/store/recover.js';
import { parseState, serializeState, StateFileError } from '../src/store/state-file.js';
import { removeStaleTemps, writeFileAtomic } from '../src/store/atomic-write.js';
import { failingDiskFs } from './fixtures/failing-fs.js';
import { tempDir } from './fixtures/server.js';

/** What a restart would load: the checkpoint and the journal replayed over it. */
const read = async (path: string) => Object.fromEntries(await readDurable(path));
/** The state file alone (the checkpoint). */
const readCheckpoint = (path: string) =>
  JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>;

t.test('a missing file means empty; the first open writes it', async (t) => {
  const path = join(tempDir(t), 'sub', 'state.json');
  const store = await Store.open(path);
  t.equal(store.get('alice'), 0);
  t.same(await read(path), {});
  t.same(readCheckpoint(path), {}, 'the state file exists for cat and jq');
});

t.test('set resolves only after the value is on disk', async (t) => {
  const path = join(tempDir(t), 'state.json');
  const store = await Store.open(path);
  const done = store.set('alice', 42);
  t.equal(statSync(`${path}.journal.1`).size, 0, 'not written yet when set() returns');
  t.equal(store.get('alice'), 42, 'but visible in memory');
  await done;
  t.same(await read(path), { alice: 42 });
  const again = await Store.open(path);
  t.equal(again.get('alice'), 42, 'survives a reopen');
});

t.test('writes are coalesced: one in flight, the rest share the next', async (t) => {
  const path = join(tempDir(t), 'state.json');
  const store = await Store.open(path);
  const before = store.commits;
  const first = Array.from({ length: 100 }, (_, i) => store.set(`id${i}`, i % 100));
  await Promise.resolve();
  const second = Array.from({ length: 100 }, (_, i) => store.set(`id${i}`, (i + 1) % 100));
  await Promise.all([...first, ...second]);
  t.ok(store.commits - before <= 2, `200 sets took ${store.commits - before} writes`);
  t.equal((await read(path)).id5, 6);
});

t.test('a set made while a write is in flight waits for the next write', async (t) => {
  const path = join(tempDir(t), 'state.json');
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let flushes = 0;
  // The message log's flush is part of every commit: holding it holds the commit.
  const journal = { flush: () => (++flushes === 1 ? gate : Promise.resolve()) };
  const store = await Store.open(path, { journal });
  const a = store.set('alice', 1);
  await new Promise((r) => setImmediate(r)); // the write of alice=1 is now in flight
  const b = store.set('alice', 2);
  let bDone = false;
  void b.then(() => (bDone = true));
  release();
  await a;
  t.equal(bDone, false, 'alice=2 was not in the write that acknowledged alice=1');
  await b;
  t.same(await read(path), { alice: 2 });
});

t.test('sync() waits for a write already in flight even with no new changes', async (t) => {
  const path = join(tempDir(t), 'state.json');
  const store = await Store.open(path);
  void store.set('bob', 7);
  await new Promise((r) => setImmediate(r));
  await store.sync();
  t.same(await read(path), { bob: 7 });
});

t.test(
  'a failed write rejects its callers, keeps the change, and a later write succeeds',
  async (t) => {
    const path = join(tempDir(t), 'state.json');
    const { fs, control } = failingDiskFs();
    const store = await Store.open(path, { fs });
    control.failing = true;
    await t.rejects(store.set('alice', 5), { code: 'ENOSPC' });
    t.same(await read(path), {}, 'nothing durable');
    control.failing = false;
    await store.sync();
    t.same(await read(path), { alice: 5 }, 'the next write carries the change');
    await store.close();
    t.same(readCheckpoint(path), { alice: 5 }, 'close leaves the state file exact');
    t.same(readdirSync(join(path, '..')), ['state.json'], 'and no journal or temp file');
  },
);

t.test(
  'a value set while a commit fails is the one written next, not the failed one',
  async (t) => {
    const path = join(tempDir(t), 'state.json');
    let fail!: (err: Error) => void;
    let flushes = 0;
    // The first commit's log flush is held, then fails: alice=2 arrives while it is in flight.
    const journal = {
      flush: () =>
        ++flushes === 1 ? new Promise<void>((_, reject) => (fail = reject)) : Promise.resolve(),
    };
    const store = await Store.open(path, { journal });
    const first = store.set('alice', 1);
    void store.set('bob', 9).catch(() => {});
    await new Promise((r) => setImmediate(r)); // alice=1 and bob=9 are now in flight
    const second = store.set('alice', 2);
    fail(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
    await t.rejects(first, { code: 'ENOSPC' });
    await second;
    t.same(await read(path), { alice: 2, bob: 9 }, 'alice keeps her newer value; bob is retried');
    await store.close();
    t.same(readCheckpoint(path), { alice: 2, bob: 9 });
  },
);

t.test(
  'an unchanged value still waits for the journal: its request line must be on disk',
  async (t) => {
    const flushes: Array<() => void> = [];
    let hold = false;
    const journal = {
      flush: () =>
        hold ? new Promise<void>((resolve) => flushes.push(resolve)) : Promise.resolve(),
    };
    const store = await Store.open(join(tempDir(t), 'state.json'), { journal });
    await store.set('a', 5);
    hold = true; // the journal's disk is slow from now on
    let done = false;
    const same = store.set('a', 5).then(() => (done = true));
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(flushes.length, 1, 'the journal was asked to flush the new request line');
    t.notOk(done, 'not durable (not to be acknowledged) before the journal flush');
    flushes[0]!();
    await same;
    t.ok(done);
  },
);

t.test('ids are plain data: __proto__, constructor, toString', async (t) => {
  const path = join(tempDir(t), 'state.json');
  const store = await Store.open(path);
  await Promise.all([
    store.set('__proto__', 1),
    store.set('constructor', 2),
    store.set('toString', 3),
  ]);
  t.equal(store.get('hasOwnProperty'), 0);
  const again = await Store.open(path);
  t.same([again.get('__proto__'), again.get('constructor'), again.get('toString')], [1, 2, 3]);
  t.equal(again.size, 3);
});

t.test('a corrupt file is refused and left untouched; --repair sets it aside', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  for (const text of [
    '{"alice": 4',
    '[1,2]',
    '{"alice": 100}',
    '{"a/b": 1}',
    '{"a": 1.5}',
    'null',
    '"x"',
  ]) {
    writeFileSync(path, text);
    await t.rejects(Store.open(path), StateFileError, text);
    t.equal(readFileSync(path, 'utf8'), text, 'untouched');
  }
  const store = await Store.open(path, { repair: true });
  t.equal(store.size, 0);
  t.same(await read(path), {});
  t.ok(
    readdirSync(dir).some((n) => n.startsWith('state.json.corrupt-')),
    'the bad file is kept aside',
  );
  t.match(store.setAside, /^.*\/state\.json\.corrupt-\d+$/, 'and the store says where');
  t.equal(readFileSync(store.setAside!, 'utf8'), '"x"', 'byte for byte');
  await store.set('alice', 9);
  const again = await Store.open(path, { repair: true });
  t.equal(again.setAside, null, 'a file the store wrote is never set aside');
  t.equal(again.get('alice'), 9);
});

t.test('--repair through a symlink sets the target aside and keeps the link', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'real'));
  const real = join(dir, 'real', 'state.json');
  const link = join(dir, 'state.json');
  writeFileSync(real, '{"alice": 100}');
  symlinkSync(real, link);
  const store = await Store.open(link, { repair: true });
  t.match(store.setAside, new RegExp(`^${real}\\.corrupt-\\d+$`), 'beside the real file');
  t.equal(readFileSync(store.setAside!, 'utf8'), '{"alice": 100}');
  t.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');
  await store.set('bob', 1);
  t.same(await read(real), { bob: 1 }, 'the target holds the new state');
  t.ok(readdirSync(join(dir, 'real')).includes('state.json.journal.1'), 'its journal beside it');
});

t.test('stale temp files from a crash are removed at open and never read', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  writeFileSync(path, '{"alice": 3}');
  writeFileSync(join(dir, 'state.json.tmp-999-1'), '{"alice": 9');
  writeFileSync(join(dir, 'other.txt'), 'keep');
  const store = await Store.open(path);
  t.equal(store.get('alice'), 3);
  t.same(readdirSync(dir).sort(), ['other.txt', 'state.json', 'state.json.journal.1']);
  t.same(await removeStaleTemps(path), []);
});

t.test('atomic write: every reader sees the old or the new file, never a mix', async (t) => {
  const path = join(tempDir(t), 'state.json');
  const big = (n: number) =>
    serializeState(new Map(Array.from({ length: 5000 }, (_, i) => [`id${i}`, n])));
  await writeFileAtomic(path, big(0));
  let reads = 0;
  let writing = true;
  const reader = (async () => {
    while (writing) {
      const values = new Set(parseState(readFileSync(path, 'utf8')).values());
      t.ok(values.size === 1, 'one generation per read');
      reads++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (let n = 1; n < 30; n++) await writeFileAtomic(path, big(n));
  writing = false;
  await reader;
  t.ok(reads > 0);
});
