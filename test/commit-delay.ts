/**
 * The commit delay (STORE_DEFAULTS.commitDelayMs): under an open loop, a commit that would follow
 * another at once waits for more records or for the delay; a closed loop never waits. The delay's
 * timer is a fake clock, so nothing here sleeps.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';
import { FileValueStore } from '../src/store/file-store.js';
import { readDurable } from '../src/store/recover.js';
import { FakeClock } from './fixtures/fake-clock.js';
import { tempDir } from './fixtures/server.js';

const turn = () => new Promise((r) => setImmediate(r));

/** Connections hold `n` ids, as the store is told. */
const holding = (n: number) => (store: Store) => store.countHeld(() => n);

/**
 * A store whose first commit is held in flight by its log flush until `release`, with ids held by
 * connections as `hold` says and a log whose unwritten bytes the test sets.
 */
async function setup(t: Test, hold: (store: Store) => void | Promise<void>, commitDelayMs = 3) {
  const clock = new FakeClock();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let flushes = 0;
  const journal = {
    backlogBytes: 0,
    flush: () => (++flushes === 1 ? gate : Promise.resolve()),
  };
  const path = join(tempDir(t), 'state.json');
  const store = await Store.open(path, {
    journal,
    clock,
    commitDelayMs,
    commitDelayBytes: 1000,
  });
  await hold(store);
  t.teardown(() => store.close());
  const first = store.set('a', 1);
  await turn(); // a=1 is in flight
  const second = store.set('b', 2); // waits for the next commit
  let done = false;
  void second.then(() => (done = true));
  release();
  await first;
  await turn();
  await turn();
  return { clock, journal, store, path, second, done: () => done };
}

t.test('open loop: the next commit waits for the delay', async (t) => {
  const s = await setup(t, holding(9)); // 1 waiting of 9 held: under an eighth
  t.equal(s.done(), false, 'b=2 is held');
  t.equal(s.clock.pending, 1, 'by one timer');
  s.clock.advance(2);
  await turn();
  t.equal(s.done(), false, 'still held at 2 ms');
  s.clock.advance(1);
  await s.second;
  t.same(Object.fromEntries(await readDurable(s.path)), { a: 1, b: 2 }, 'committed at 3 ms');
});

t.test('the file store tells the store how many ids its connections hold', async (t) => {
  const s = await setup(t, async (store) => {
    const ids = new FileValueStore(store, 1_000_000);
    const holder = { token: 't', takenOver: () => {} };
    for (let i = 0; i < 9; i++) await ids.claim(`held-${i}`, holder);
  });
  t.equal(s.done(), false, 'b=2 is held: 1 waiting of the 9 ids claimed');
  t.equal(s.clock.pending, 1);
  s.clock.advance(3);
  await s.second;
});

t.test('open loop: enough log records start it before the delay', async (t) => {
  const s = await setup(t, holding(9));
  t.equal(s.done(), false, 'b=2 is held');
  s.journal.backlogBytes = 1000;
  void s.store.set('c', 3); // each sync checks the log's unwritten bytes
  await s.second;
  t.equal(s.clock.pending, 0, 'the timer is cleared');
});

t.test('closed loop: an eighth or more of the held ids waiting starts it at once', async (t) => {
  const s = await setup(t, holding(8)); // 1 waiting of 8 held
  await s.second;
  t.equal(s.clock.pending, 0, 'no timer');
});

t.test('a delay of 0 turns it off', async (t) => {
  const s = await setup(t, holding(9), 0);
  await s.second;
  t.equal(s.clock.pending, 0, 'no timer');
});

t.test('close() does not wait out the delay', async (t) => {
  const s = await setup(t, holding(9));
  t.equal(s.done(), false, 'b=2 is held');
  await s.store.close();
  t.equal(s.done(), true, 'b=2 committed by close');
  t.equal(s.clock.pending, 0, 'the timer is cleared');
});
