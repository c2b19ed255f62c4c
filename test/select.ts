import t from 'tap';
import fc from 'fast-check';
import { MAX_ROWS } from '../src/monitor/defaults.js';
import { Monitor } from '../src/monitor/monitor.js';
import { MAX_CLOSED_SHOWN, selectRows } from '../src/monitor/select.js';
import type { ClientWatch } from '../src/monitor/watch.js';

/** The selection as it was made before rows were built only for what is sent: every row, then filters. */
function reference(monitor: Monitor, filter: string) {
  const all = [...monitor.closed, ...monitor.open.values()];
  const matching = filter === '' ? all : all.filter((w) => w.id === filter);
  const closed = matching.filter((w) => w.closedAt !== null).slice(-MAX_CLOSED_SHOWN);
  const open = matching.filter((w) => w.closedAt === null).slice(0, MAX_ROWS - closed.length);
  const watches = [...closed, ...open];
  return { watches, hidden: matching.length - watches.length };
}

const numbers = (ws: ClientWatch[]) => ws.map((w) => w.number);

/** A monitor with `opens` connections (ids from a small set, some none) and some of them closed. */
function monitorWith(ids: Array<string | null>, closes: number[]): Monitor {
  let now = 1_000;
  const monitor = new Monitor(() => now++);
  ids.forEach((id, i) => {
    monitor.opened(i + 1, `127.0.0.1:${1000 + i}`);
    if (id !== null) monitor.identified(i + 1, id);
  });
  for (const n of closes) monitor.open.get(n)?.closed('quit');
  return monitor;
}

t.test(
  'no filter: the newest closed rows, then the oldest open ones, MAX_ROWS in all',
  async (t) => {
    const ids = Array.from({ length: 300 }, (_, i) => `c${i + 1}`);
    const closes = Array.from({ length: 40 }, (_, i) => 2 * i + 1); // 1, 3, ..., 79
    const { watches, hidden } = selectRows(monitorWith(ids, closes), '');
    t.equal(watches.length, MAX_ROWS);
    t.same(numbers(watches.slice(0, MAX_CLOSED_SHOWN)), closes.slice(-MAX_CLOSED_SHOWN));
    t.same(numbers(watches.slice(MAX_CLOSED_SHOWN, MAX_CLOSED_SHOWN + 3)), [2, 4, 6]);
    t.equal(hidden, 300 - MAX_ROWS);
  },
);

t.test('an id filter: only that id, open and closed', async (t) => {
  const monitor = monitorWith(['a', 'b', 'a', null, 'a'], [1]);
  const { watches, hidden } = selectRows(monitor, 'a');
  t.same(numbers(watches), [1, 3, 5]);
  t.equal(hidden, 0);
  t.same(selectRows(monitor, 'nobody'), { watches: [], hidden: 0 });
});

t.test('the same rows as filtering every row would pick, for any mix', async (t) => {
  const id = fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null, freq: 5 });
  fc.assert(
    fc.property(
      fc.array(id, { maxLength: 3 * MAX_ROWS, size: 'max' }),
      fc.array(fc.nat({ max: 3 * MAX_ROWS }), { maxLength: 2 * MAX_ROWS, size: 'max' }),
      fc.constantFrom('', 'a', 'b', 'c'),
      (ids, closes, filter) => {
        const monitor = monitorWith(ids, closes);
        const got = selectRows(monitor, filter);
        const want = reference(monitor, filter);
        return (
          numbers(got.watches).join() === numbers(want.watches).join() && got.hidden === want.hidden
        );
      },
    ),
    { seed: 9, numRuns: 300 },
  );
  t.pass('300 random mixes');
});
