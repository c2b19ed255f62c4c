import t from 'tap';
import { ReplyQueue } from '../src/server/reply-queue.js';
import { Pending } from '../src/server/pending.js';
import type { Reply } from '../src/protocol/replies.js';

const deferred = <T = number>() => {
  let resolve!: (v: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
};
/** `OK n` once `after` resolves to n (or to nothing: `value`); `ERR STORAGE` if it rejects. */
const ok = (after: Promise<number | void>, value?: number) =>
  Pending.of(
    after,
    (n): Reply => ({ kind: 'OK', value: value ?? (n as number) }),
    (): Reply => ({ kind: 'ERR', code: 'STORAGE', text: 'failed' }),
  );
const settle = () => new Promise((r) => setImmediate(r));

t.test('a ready reply with nothing waiting is written at once', async (t) => {
  const writes: string[][] = [];
  const q = new ReplyQueue((lines) => writes.push(lines));
  q.push('PONG');
  t.same(writes, [['PONG']]);
  t.equal(q.waiting, 0);
});

t.test('a ready reply waits behind a pending one; order is request order', async (t) => {
  const writes: string[][] = [];
  const q = new ReplyQueue((lines) => writes.push(lines));
  const a = deferred();
  const b = deferred();
  q.push(ok(a.promise));
  q.push('PONG');
  q.push(ok(b.promise));
  q.push('EVEN 2');
  t.equal(q.waiting, 4);
  b.resolve(2);
  await settle();
  t.same(writes, [], 'nothing leaves before the first reply is ready');
  a.resolve(1);
  await settle();
  t.same(writes, [['OK 1', 'PONG', 'OK 2', 'EVEN 2']]);
  t.equal(q.waiting, 0);
});

t.test('replies settled by one commit leave in one write', async (t) => {
  const writes: string[][] = [];
  const q = new ReplyQueue((lines) => writes.push(lines));
  const commit = deferred<void>();
  let reactions = 0;
  const counted = commit.promise.then;
  commit.promise.then = function (this: Promise<void>, ...args) {
    reactions++;
    return counted.apply(this, args);
  } as typeof counted;
  for (let i = 0; i < 16; i++) q.push(ok(commit.promise, i));
  t.equal(reactions, 1, 'the 16 replies waiting on one commit hang one reaction on it');
  commit.resolve();
  await settle();
  t.equal(writes.length, 1, 'one write for 16 replies');
  t.same(
    writes[0],
    Array.from({ length: 16 }, (_, i) => `OK ${i}`),
  );
});

t.test('a failed commit answers each of its replies with its own refusal, in order', async (t) => {
  const writes: string[][] = [];
  const q = new ReplyQueue((lines) => writes.push(lines));
  const first = deferred<void>();
  const second = deferred<void>();
  q.push(ok(first.promise, 1));
  q.push(ok(first.promise, 2));
  q.push('PONG');
  q.push(ok(second.promise, 3));
  q.push(ok(first.promise, 4)); // not next to the others: a group of its own on the same promise
  first.reject(new Error('EIO'));
  await settle();
  t.same(writes, [['ERR STORAGE failed', 'ERR STORAGE failed', 'PONG']]);
  second.resolve();
  await settle();
  t.same(writes[1], ['OK 3', 'ERR STORAGE failed']);
  t.equal(q.waiting, 0);
});

t.test('a reply waiting on a promise that already settled joins no settled group', async (t) => {
  const writes: string[][] = [];
  const q = new ReplyQueue((lines) => writes.push(lines));
  const commit = deferred<void>();
  q.push(ok(commit.promise, 1));
  commit.resolve();
  await settle();
  q.push(ok(commit.promise, 2)); // the same promise, after its group was settled and written
  await settle();
  t.same(writes, [['OK 1'], ['OK 2']]);
  t.equal(q.waiting, 0);
});
