import t from 'tap';
import { LoggedStore } from '../src/store/logged-store.js';
import { StorageError } from '../src/store/redis/errors.js';
import {
  IdLimitError,
  TakenOverError,
  type Holder,
  type ValueStore,
} from '../src/store/value-store.js';

// LoggedStore without Redis: an inner store whose every write the test settles by hand, and a
// message log whose flushes it counts and settles by hand.

type Pending = { resolve(v?: unknown): void; reject(err: unknown): void };

function deferred(): Pending & { promise: Promise<never> } {
  let resolve!: Pending['resolve'];
  let reject!: Pending['reject'];
  const promise = new Promise<never>((res, rej) => {
    resolve = res as Pending['resolve'];
    reject = rej;
  });
  return { promise, resolve, reject };
}

function rig() {
  const writes: Pending[] = [];
  const flushes: Pending[] = [];
  const commits: Array<{ values: number; ok: boolean }> = [];
  const write = () => {
    const d = deferred();
    writes.push(d);
    return d.promise;
  };
  const inner: ValueStore = {
    description: 'fake',
    size: 0,
    claim: write,
    set: write,
    peek: () => undefined,
    release: () => {},
    close: async () => {},
  };
  const log = {
    flush: () => {
      const d = deferred();
      flushes.push(d);
      return d.promise as Promise<void>;
    },
  };
  const store = new LoggedStore(inner, log, (_ms, values, ok) => commits.push({ values, ok }));
  return { store, writes, flushes, commits };
}

const holder: Holder = { token: 't', takenOver: () => {} };
const turn = () => new Promise((resolve) => setImmediate(resolve));
const settled = (p: Promise<unknown>) =>
  p.then(
    (v) => ({ ok: v }),
    (err: Error) => ({ err: err.constructor.name }),
  );

t.test('the writes of one turn share one flush and are one commit', async (t) => {
  const { store, writes, flushes, commits } = rig();
  const claim = settled(store.claim('alice', holder));
  const set = settled(store.set('bob', holder, 5));
  t.equal(flushes.length, 0, 'the flush waits for the turn to end');
  await turn();
  t.equal(flushes.length, 1, 'one flush for both');
  writes[0]!.resolve(7);
  writes[1]!.resolve();
  await turn();
  t.same(commits, [], 'no answer before the log is flushed');
  flushes[0]!.resolve();
  t.same(await claim, { ok: 7 });
  t.same(await set, { ok: undefined });
  t.same(commits, [{ values: 2, ok: true }]);
  const next = settled(store.set('bob', holder, 6));
  await turn();
  t.equal(flushes.length, 2, 'a later turn flushes again');
  writes[2]!.resolve();
  flushes[1]!.resolve();
  t.same(await next, { ok: undefined });
});

t.test('a takeover or a full store is an answer, not a failed commit', async (t) => {
  const { store, writes, flushes, commits } = rig();
  const taken = settled(store.set('alice', holder, 1));
  const full = settled(store.claim('zed', holder));
  writes[0]!.reject(new TakenOverError('alice'));
  writes[1]!.reject(new IdLimitError(1));
  await turn();
  flushes[0]!.resolve();
  t.same(await taken, { err: 'TakenOverError' });
  t.same(await full, { err: 'IdLimitError' });
  t.same(commits, [{ values: 2, ok: true }]);
});

t.test('a storage error fails the commit, and is reported before any reply', async (t) => {
  const { store, writes, flushes, commits } = rig();
  const failed = store.set('alice', holder, 1).catch((err: unknown) => {
    t.same(commits, [{ values: 2, ok: false }], 'reported before the peer hears of it');
    return err;
  });
  const fine = settled(store.set('bob', holder, 2));
  writes[0]!.reject(new StorageError('ETIMEDOUT', 'no answer'));
  await turn();
  t.same(commits, [], 'not while the turn is still open');
  writes[1]!.resolve();
  flushes[0]!.resolve();
  t.match(await failed, { code: 'ETIMEDOUT' });
  t.same(await fine, { ok: undefined }, 'the other write of the turn is still answered');
});

t.test('a failed log flush fails every write of the turn', async (t) => {
  const { store, writes, flushes, commits } = rig();
  const a = store.set('alice', holder, 1);
  await turn();
  writes[0]!.resolve();
  flushes[0]!.reject(Object.assign(new Error('disk'), { code: 'EIO' }));
  await t.rejects(a, { code: 'EIO' }, 'no OK without its request line on disk');
  t.same(commits, [{ values: 1, ok: false }]);
});
