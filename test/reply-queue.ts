import t from 'tap';
import { ReplyQueue } from '../src/server/reply-queue.js';

const deferred = () => {
  let resolve!: (s: string) => void;
  const promise = new Promise<string>((r) => (resolve = r));
  return { promise, resolve };
};
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
  q.push(a.promise);
  q.push('PONG');
  q.push(b.promise);
  q.push('EVEN 2');
  t.equal(q.waiting, 4);
  b.resolve('OK 2');
  await settle();
  t.same(writes, [], 'nothing leaves before the first reply is ready');
  a.resolve('OK 1');
  await settle();
  t.same(writes, [['OK 1', 'PONG', 'OK 2', 'EVEN 2']]);
  t.equal(q.waiting, 0);
});

t.test('replies settled by one commit leave in one write', async (t) => {
  const writes: string[][] = [];
  const q = new ReplyQueue((lines) => writes.push(lines));
  const commit = deferred();
  for (let i = 0; i < 16; i++) q.push(commit.promise.then(() => `OK ${i}`));
  commit.resolve('');
  await settle();
  t.equal(writes.length, 1, 'one write for 16 replies');
  t.same(
    writes[0],
    Array.from({ length: 16 }, (_, i) => `OK ${i}`),
  );
});
