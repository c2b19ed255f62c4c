import t from 'tap';
import { promises as fsp, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRecords } from '../src/store/journal-format.js';
import { readDurable } from '../src/store/recover.js';
import { Store } from '../src/store/store.js';
import { tempDir } from './fixtures/server.js';

const checkpoint = (path: string) =>
  JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>;
const journals = (dir: string) => readdirSync(dir).filter((n) => n.includes('.journal.'));

async function until(what: () => boolean): Promise<void> {
  while (!what()) await new Promise((resolve) => setTimeout(resolve, 5));
}

t.test('a large enough journal starts a checkpoint and a new generation', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  const store = await Store.open(path, { checkpointBytes: 30 });
  await store.set('alice', 1); // 17 bytes: below the limit
  t.same(journals(dir), ['state.json.journal.1']);
  t.same(checkpoint(path), {}, 'no checkpoint yet');
  await store.set('bob', 2);
  await until(() => checkpoint(path).bob === 2);
  await until(() => journals(dir).length === 1);
  t.same(journals(dir), ['state.json.journal.2'], 'generation 1 is deleted once checkpointed');
  await store.set('carol', 3);
  t.same(Object.fromEntries(await readDurable(path)), { alice: 1, bob: 2, carol: 3 });
  await store.close();
  t.same(checkpoint(path), { alice: 1, bob: 2, carol: 3 }, 'exact after close');
  t.same(journals(dir), [], 'and no journal left');
});

t.test('an old journal starts a checkpoint at the next commit', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  let now = 0;
  const store = await Store.open(path, { checkpointMs: 1_000, now: () => now });
  await store.set('alice', 1);
  t.same(checkpoint(path), {});
  now = 1_000;
  await store.set('alice', 2);
  await until(() => checkpoint(path).alice === 2);
  await store.close();
});

/**
 * fs/promises that a "crash" stops dead: from `die()` on, every call (and every call on a file it
 * opened) never settles, so nothing more reaches the disk, as when the process is killed.
 */
function mortalFs() {
  let dead = false;
  const never = new Promise<never>(() => {});
  const mortal =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> =>
      dead ? never : f(...a);
  const fs = Object.fromEntries(
    Object.entries(fsp).map(([name, f]) => [
      name,
      typeof f === 'function' ? mortal(f as (...a: unknown[]) => Promise<unknown>) : f,
    ]),
  ) as unknown as typeof fsp;
  fs.open = (async (...args: Parameters<typeof fsp.open>) => {
    if (dead) return never;
    const handle = await fsp.open(...args);
    return new Proxy(handle, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function'
          ? mortal((value as (...a: unknown[]) => Promise<unknown>).bind(target))
          : value;
      },
    });
  }) as typeof fsp.open;
  return { fs, die: () => void (dead = true) };
}

t.test('a restart without a clean stop replays the journal over the checkpoint', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  const { fs, die } = mortalFs();
  const crashed = await Store.open(path, { checkpointBytes: 100, fs });
  for (let i = 0; i < 300; i++) await crashed.set(`id${i % 17}`, i % 100);
  // The process "dies" here, whatever the background checkpoint was doing: it writes no more.
  die();
  const again = await Store.open(path);
  for (let k = 0; k < 17; k++) {
    const last = Math.max(...Array.from({ length: 300 }, (_, i) => i).filter((i) => i % 17 === k));
    t.equal(again.get(`id${k}`), last % 100, `id${k}`);
  }
  await again.close();
});

t.test(
  'a generation left after its checkpoint (crash before the delete) is harmless',
  async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'state.json');
    // The checkpoint holds alice=2 (set after generation 1's alice=1, so in generation 2 too).
    writeFileSync(path, '{\n  "alice":  2,\n  "bob":  5\n}\n');
    writeFileSync(
      `${path}.journal.1`,
      encodeRecords([
        ['alice', 1],
        ['bob', 5],
      ]),
    );
    writeFileSync(`${path}.journal.2`, encodeRecords([['alice', 2]]));
    const store = await Store.open(path);
    t.same([store.get('alice'), store.get('bob')], [2, 5]);
    await store.set('carol', 1);
    await store.close();
    t.same(checkpoint(path), { alice: 2, bob: 5, carol: 1 });
    t.same(journals(dir), []);
  },
);

t.test('a torn tail is cut at start, said, and appends go on after it', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  const whole = encodeRecords([['alice', 3]]);
  const torn = encodeRecords([['alice', 4]]).subarray(0, 6);
  writeFileSync(path, '{}\n');
  writeFileSync(`${path}.journal.1`, Buffer.concat([whole, torn]));
  const warnings: unknown[] = [];
  const store = await Store.open(path, { warn: (details) => warnings.push(details) });
  t.equal(store.get('alice'), 3);
  t.match(warnings, [{ cutBytes: 6, keptBytes: whole.length }], 'what was cut is told');
  await store.set('bob', 1);
  const again = await Store.open(path);
  t.same([again.get('alice'), again.get('bob')], [3, 1], 'the record after the cut reads back');
});

t.test('deletes that fail leave generations that replay to the right values', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  const fs = {
    ...fsp,
    unlink: (async (p: string) => {
      if (p.includes('.journal.')) throw Object.assign(new Error('injected'), { code: 'EIO' });
      return fsp.unlink(p);
    }) as typeof fsp.unlink,
  };
  const store = await Store.open(path, { fs, checkpointBytes: 1 });
  for (let i = 0; i < 200; i++) await store.set(`id${i % 5}`, (i * 7) % 100);
  t.ok(journals(dir).length > 1, `${journals(dir).length} generations kept`);
  const expected = Object.fromEntries(
    Array.from({ length: 5 }, (_, k) => [`id${k}`, store.get(`id${k}`)]),
  );
  t.same(Object.fromEntries(await readDurable(path)), expected);
  const again = await Store.open(path);
  t.same(
    Object.fromEntries(Array.from({ length: 5 }, (_, k) => [`id${k}`, again.get(`id${k}`)])),
    expected,
  );
});
