import t from 'tap';
import { HISTORY_SAMPLES, MAX_ROWS, RATE_TICKS, UPDATE_MS } from '../src/monitor/defaults.js';
import { Monitor } from '../src/monitor/monitor.js';
import { Sampler, type Viewer } from '../src/monitor/sampler.js';
import type { Update } from '../src/monitor/wire.js';
import { FakeClock } from './fixtures/fake-clock.js';

/** A monitor on a fake clock with a store of its own, and a sampler on the same clock. */
function setup() {
  const clock = new FakeClock();
  const monitor = new Monitor(() => clock.now());
  const values = new Map<string, number>();
  monitor.store = { peek: (id) => values.get(id), size: 0 };
  const sampler = new Sampler(monitor, clock);
  /** A connection that said HELLO with `id` and has `value`. */
  const open = (n: number, id: string, value: number) => {
    const w = monitor.opened(n, `127.0.0.1:${1000 + n}`);
    monitor.identified(n, id);
    values.set(id, value);
    return w;
  };
  return { clock, monitor, values, sampler, open };
}

type Seen = { json: string[]; updates: Update[] };

function viewer(filter = ''): Viewer & Seen {
  const json: string[] = [];
  const updates: Update[] = [];
  return {
    filter,
    seen: new Set(),
    json,
    updates,
    send(text) {
      json.push(text);
      updates.push(JSON.parse(text) as Update);
    },
  };
}

t.test('no viewer, no timer; the first update at once, then one per UPDATE_MS', async (t) => {
  const { clock, sampler, open } = setup();
  open(1, 'alice', 5);
  t.equal(clock.pending, 0);
  t.equal(sampler.snapshot(), null, 'nobody watches: nothing sampled');
  const v = viewer();
  sampler.add(v);
  t.equal(v.updates.length, 1);
  t.equal(clock.pending, 1);
  clock.advance(UPDATE_MS - 1);
  t.equal(v.updates.length, 1);
  clock.advance(1);
  t.equal(v.updates.length, 2);
  const late = viewer();
  sampler.add(late);
  t.equal(late.updates.length, 0, 'a second viewer waits for the next tick');
  t.equal(sampler.viewers, 2);
  sampler.remove(v);
  sampler.remove(v);
  t.equal(sampler.viewers, 1, 'removing twice counts once');
  t.equal(clock.pending, 1);
  sampler.remove(late);
  t.equal(clock.pending, 0, 'the last viewer gone, the timer stops');
  t.equal(sampler.snapshot(), null);
  sampler.remove(viewer('nobody'));
  t.equal(sampler.viewers, 0);
});

t.test('rows: values and rates of the tick, history once per viewer', async (t) => {
  const { clock, sampler, open, values } = setup();
  const w = open(1, 'alice', 5);
  const v = viewer();
  sampler.add(v);
  t.match(v.updates[0]!.rows, [{ conn: 1, id: 'alice', value: 5, requestsPerSecond: 0 }]);
  t.same(v.updates[0]!.rows[0]!.history, [5]);
  for (let i = 0; i < RATE_TICKS + 2; i++) {
    w.requests += 2; // 8 a second
    values.set('alice', i);
    clock.advance(UPDATE_MS);
  }
  const last = v.updates.at(-1)!;
  t.match(last.rows, [{ value: RATE_TICKS + 1, requestsPerSecond: 8 }]);
  t.equal(last.rows[0]!.history, undefined, 'history is sent on first sight only');
  t.same(last.totals.connections, 1);
  const late = viewer();
  sampler.add(late);
  clock.advance(UPDATE_MS);
  const history = late.updates[0]!.rows[0]!.history!;
  t.equal(history.length, RATE_TICKS + 4);
  t.same(history.slice(0, 3), [5, 0, 1]);
  t.equal(v.updates.at(-1)!.rows[0]!.history, undefined);
});

t.test('the chart keeps HISTORY_SAMPLES values; no value yet is null', async (t) => {
  const { clock, monitor, sampler } = setup();
  monitor.opened(1, '127.0.0.1:1000'); // no HELLO yet
  const v = viewer();
  sampler.add(v);
  t.match(v.updates[0]!.rows, [{ id: null, value: null }]);
  clock.advance(UPDATE_MS * (HISTORY_SAMPLES + 5));
  const late = viewer();
  sampler.add(late);
  clock.advance(UPDATE_MS);
  const history = late.updates[0]!.rows[0]!.history!;
  t.equal(history.length, HISTORY_SAMPLES);
  t.ok(history.every((x) => x === null));
});

t.test('viewers with one filter share one string; each filter is serialised once', async (t) => {
  const { clock, sampler, open } = setup();
  open(1, 'alice', 1);
  open(2, 'bob', 2);
  const [a, b, c] = [viewer(), viewer(), viewer('bob')];
  sampler.add(a);
  sampler.add(b);
  sampler.add(c);
  clock.advance(UPDATE_MS);
  t.not(a.json[1], b.json[1], 'b has not seen the rows yet: its update carries their history');
  t.ok(b.updates[0]!.rows.every((r) => r.history !== undefined));
  clock.advance(UPDATE_MS);
  t.equal(a.json[2], b.json[1], 'the same update, the same string');
  t.same(
    c.updates.at(-1)!.rows.map((r) => r.id),
    ['bob'],
  );
  const d = viewer();
  sampler.add(d);
  clock.advance(UPDATE_MS);
  t.equal(a.json.at(-1), b.json.at(-1));
  t.not(d.json[0], a.json.at(-1));
});

t.test('many clients: MAX_ROWS rows sent, the rest counted', async (t) => {
  const { clock, sampler, open, monitor } = setup();
  for (let n = 1; n <= MAX_ROWS + 50; n++) open(n, `c${n}`, n % 100);
  monitor.open.get(7)!.closed('quit');
  const v = viewer();
  sampler.add(v);
  clock.advance(UPDATE_MS);
  const u = v.updates.at(-1)!;
  t.equal(u.rows.length, MAX_ROWS);
  t.match(u.rows[0], { conn: 7, reason: 'QUIT', requestsPerSecond: 0, value: 7 });
  t.equal(u.hidden, 50);
  t.equal(sampler.snapshot()!.rows.length, MAX_ROWS + 50, '/api/clients: every row');
});

t.test('snapshot(): what /api/clients shows while watched', async (t) => {
  const { clock, sampler, open, values } = setup();
  const w = open(1, 'alice', 3);
  open(2, 'bob', 4);
  sampler.add(viewer());
  w.requests += 4;
  clock.advance(UPDATE_MS);
  values.set('alice', 9); // after the tick: the snapshot shows the tick's value
  open(3, 'carol', 6); // not sampled yet: its value now, no rate
  const s = sampler.snapshot()!;
  t.equal(s.rates, 'last 2 s');
  t.equal(s.at, clock.now());
  t.match(s.rows, [
    { id: 'alice', value: 3, requestsPerSecond: 16 },
    { id: 'bob', value: 4, requestsPerSecond: 0 },
    { id: 'carol', value: 6, requestsPerSecond: 0 },
  ]);
  t.same(
    sampler.snapshot('bob')!.rows.map((r) => r.id),
    ['bob'],
  );
});

t.test('the tail of each filter goes with its update', async (t) => {
  const { sampler, monitor, open, clock } = setup();
  open(1, 'alice', 0);
  const all = viewer();
  const alice = viewer('alice');
  sampler.add(all);
  sampler.add(alice);
  const sink = monitor.tap({ write: () => true });
  sink.write('{"conn":1,"id":"alice","dir":"in","line":"PING"}\n');
  sink.write('{"conn":2,"id":"bob","dir":"in","line":"PING"}\n');
  clock.advance(UPDATE_MS);
  t.equal(all.updates.at(-1)!.tail.lines.length, 2);
  t.same(alice.updates.at(-1)!.tail.lines, ['{"conn":1,"id":"alice","dir":"in","line":"PING"}']);
  sampler.remove(alice);
  t.ok(monitor.tail.active, 'the unfiltered tail stays while watched');
  sampler.remove(all);
  t.notOk(monitor.tail.active);
});

t.test('a viewer that leaves during an update stops nothing for the others', async (t) => {
  const { sampler, clock, open } = setup();
  open(1, 'alice', 0);
  let sent = 0;
  const leaving: Viewer = {
    filter: '',
    seen: new Set(),
    send: () => void (++sent === 2 && sampler.remove(leaving)), // as a destroyed stream would
  };
  sampler.add(leaving);
  const others = [viewer(), viewer('alice')];
  for (const v of others) sampler.add(v);
  clock.advance(UPDATE_MS);
  t.equal(sampler.viewers, 2);
  t.equal(others[0]!.updates.length, 1);
  t.equal(others[1]!.updates.length, 1);
});

t.test('watching again starts the rates and charts over', async (t) => {
  const { sampler, clock, open } = setup();
  const w = open(1, 'alice', 1);
  const first = viewer();
  sampler.add(first);
  w.requests += 10;
  clock.advance(UPDATE_MS * 3);
  sampler.remove(first);
  clock.advance(60_000);
  const again = viewer();
  sampler.add(again);
  t.match(again.updates[0]!.rows, [{ requestsPerSecond: 0, history: [1] }]);
});
