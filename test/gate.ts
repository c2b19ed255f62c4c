import t from 'tap';
import { Gate } from '../src/server/gate.js';

/** A task that finishes when told to. */
function task() {
  let finish!: (ok: boolean) => void;
  const done = new Promise<string>((resolve, reject) => {
    finish = (ok) => (ok ? resolve('done') : reject(new Error('failed')));
  });
  return { run: () => done, finish };
}

const turn = () => new Promise((r) => setImmediate(r));

t.test('at most `limit` run; the rest start in order as slots free', async (t) => {
  const gate = new Gate(2);
  const tasks = Array.from({ length: 5 }, task);
  const started: number[] = [];
  const results = tasks.map((k, i) =>
    gate.run(() => (started.push(i), k.run())).catch((err: Error) => err.message),
  );
  await turn();
  t.same(started, [0, 1]);
  t.equal(gate.running, 2);
  t.equal(gate.waiting, 3);
  tasks[1]!.finish(false); // a failure frees its slot too
  await turn();
  t.same(started, [0, 1, 2]);
  t.equal(gate.running, 2, 'the slot was handed on, not released');
  tasks[0]!.finish(true);
  tasks[2]!.finish(true);
  await turn();
  t.same(started, [0, 1, 2, 3, 4]);
  tasks[3]!.finish(true);
  tasks[4]!.finish(true);
  t.same(await Promise.all(results), ['done', 'failed', 'done', 'done', 'done']);
  t.equal(gate.running, 0);
  t.equal(gate.waiting, 0);
});
