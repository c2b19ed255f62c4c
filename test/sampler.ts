import t from 'tap';
import fc from 'fast-check';
import { HISTORY_SAMPLES, MAX_ROWS, RATE_TICKS, UPDATE_MS } from '../src/monitor/defaults.js';
import { Monitor } from '../src/monitor/monitor.js';
import { Sampler, type Viewer } from '../src/monitor/sampler.js';
import type { ClientWatch } from '../src/monitor/watch.js';
import { parseRequest } from '../src/protocol/requests.js';
import type { Row, Update } from '../src/monitor/wire.js';
import { FakeClock } from './fixtures/fake-clock.js';

const PING = parseRequest('PING');

/** `n` requests, as the connection reports them. */
function requests(w: ClientWatch, n: number, at: number) {
  for (let i = 0; i < n; i++) w.request(PING, at);
}

/** A new value, as the store takes it and the connection's reply says it. */
function setValue(values: Map<string, number>, w: ClientWatch, value: number) {
  values.set(w.id!, value);
  w.replies([`OK ${value}`]);
}

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
    values.set(id, value);
    monitor.identified(n, id);
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
    requests(w, 2, clock.now()); // 8 a second
    setValue(values, w, i);
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
  requests(w, 4, clock.now());
  clock.advance(UPDATE_MS);
  setValue(values, w, 9); // after the tick: the snapshot shows the tick's value
  requests(w, 4, clock.now()); // and its rate
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
  const sink = monitor.tap({ write: () => true, acceptedBytes: 0 });
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
  requests(w, 10, clock.now());
  clock.advance(UPDATE_MS * 3);
  sampler.remove(first);
  clock.advance(60_000);
  const again = viewer();
  sampler.add(again);
  t.match(again.updates[0]!.rows, [{ requestsPerSecond: 0, history: [1] }]);
});

t.test('a tick visits only the rows it shows; nobody watching, no connection fills', async (t) => {
  const { sampler, clock, open, monitor } = setup();
  const ws = Array.from({ length: MAX_ROWS + 10 }, (_, i) => open(i + 1, `c${i + 1}`, 1));
  const hidden = ws.at(-1)!;
  requests(hidden, 3, clock.now());
  t.equal(hidden.rateRing, null, 'nobody watches: nothing kept');
  const v = viewer();
  sampler.add(v);
  clock.advance(UPDATE_MS * 20);
  t.equal(hidden.rateRing, null, 'idle and not shown: never touched');
  t.ok(ws[0]!.rateRing, 'shown: filled when sent');
  requests(hidden, 1, clock.now());
  t.equal(hidden.countsTo, monitor.sampling.tick, 'a request fills the counts it missed');
  t.equal(hidden.history, null, 'but not the values: it did not change');
  t.match(sampler.snapshot()!.rows.at(-1), { conn: hidden.number, requestsPerSecond: 0 });
  sampler.remove(v);
  t.notOk(monitor.sampling.on);
});

/** One step of a random run: what the connections do between ticks, and the ticks. */
type Step =
  | { kind: 'open'; n: number }
  | { kind: 'requests'; i: number; n: number }
  | { kind: 'value'; i: number; value: number }
  | { kind: 'close'; i: number }
  | { kind: 'tick'; n: number }
  | { kind: 'join' }
  | { kind: 'snapshot' };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('open' as const), n: fc.constantFrom(1, 1, 1, 40) }),
  fc.record({
    kind: fc.constant('requests' as const),
    i: fc.nat(),
    n: fc.integer({ min: 1, max: 5 }),
  }),
  fc.record({
    kind: fc.constant('value' as const),
    i: fc.nat(),
    value: fc.integer({ min: 0, max: 99 }),
  }),
  fc.record({ kind: fc.constant('close' as const), i: fc.nat() }),
  fc.record({
    kind: fc.constant('tick' as const),
    n: fc.constantFrom(1, 1, 2, 12, HISTORY_SAMPLES + 10),
  }),
  fc.constant<Step>({ kind: 'join' }),
  fc.constant<Step>({ kind: 'snapshot' }),
);

type State = { conn: number; requests: number; value: number | null };

/**
 * The sampler as it was before connections kept their own ticks: at every tick, every open
 * connection's request count and value are read and kept. Rates and charts follow from those.
 */
class EagerModel {
  readonly #at: number[] = [];
  readonly #seen = new Map<number, State[]>();

  tick(at: number, open: State[]) {
    this.#at.push(at);
    for (const c of open) {
      const samples = this.#seen.get(c.conn) ?? [];
      samples.push({ ...c });
      this.#seen.set(c.conn, samples);
    }
  }

  rate(conn: number): number {
    const samples = this.#seen.get(conn) ?? [];
    const back = Math.min(samples.length - 1, RATE_TICKS);
    if (back <= 0) return 0;
    const seconds = (this.#at.at(-1)! - this.#at.at(-1 - back)!) / 1000;
    const n = samples.at(-1)!.requests - samples.at(-1 - back)!.requests;
    return Math.round((n / seconds) * 10) / 10;
  }

  value(conn: number): number | null | undefined {
    return this.#seen.get(conn)?.at(-1)?.value;
  }

  history(conn: number): Array<number | null> {
    return (this.#seen.get(conn) ?? []).slice(-HISTORY_SAMPLES).map((s) => s.value);
  }
}

t.test('rates, values and charts: the same as reading every connection every tick', async (t) => {
  let rowsChecked = 0;
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 300, size: 'max' }), (steps) => {
      const { clock, sampler, open, values } = setup();
      const model = new EagerModel();
      const all: ClientWatch[] = [];
      const state = new Map<number, State>();
      const openOnes = () => [...state.values()].filter((c) => all[c.conn - 1]!.closedAt === null);
      const compare = (r: Row, what: string) => {
        if (r.closedAt !== null) return;
        // Not sampled yet (opened since the last tick): its value now.
        const value = model.value(r.conn) ?? state.get(r.conn)!.value;
        const want = { rate: model.rate(r.conn), value };
        const got = { rate: r.requestsPerSecond, value: r.value };
        if (r.history !== undefined) {
          Object.assign(want, { history: model.history(r.conn).join() });
          Object.assign(got, { history: r.history.join() });
        }
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          throw new Error(`${what} #${r.conn}: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`);
        }
        rowsChecked++;
      };
      // The one viewer that stays shows one id: every other row is visited only when a joining
      // viewer or /api/clients asks for it, after any number of ticks.
      const staying = viewer('c1');
      let joining: (Viewer & Seen) | null = null;
      const tick = () => {
        model.tick(clock.now() + UPDATE_MS, openOnes());
        clock.advance(UPDATE_MS);
        for (const r of staying.updates.at(-1)!.rows) compare(r, 'c1 update');
        if (joining === null) return;
        for (const r of joining.updates[0]!.rows) compare(r, 'first update');
        sampler.remove(joining);
        joining = null;
      };
      const act = (s: Step) => {
        const w = all.length === 0 ? undefined : all[((s as { i?: number }).i ?? 0) % all.length];
        const live = w !== undefined && w.closedAt === null ? w : undefined;
        switch (s.kind) {
          case 'open':
            for (let k = 0; k < s.n; k++) {
              const n = all.length + 1;
              all.push(open(n, `c${n}`, n % 100));
              state.set(n, { conn: n, requests: 0, value: n % 100 });
            }
            break;
          case 'requests':
            if (live === undefined) break;
            requests(live, s.n, clock.now());
            state.get(live.number)!.requests += s.n;
            break;
          case 'value':
            if (live === undefined) break;
            setValue(values, live, s.value);
            state.get(live.number)!.value = s.value;
            break;
          case 'close':
            live?.closed('quit');
            break;
          case 'tick':
            for (let k = 0; k < s.n; k++) tick();
            break;
          case 'join':
            if (joining !== null) break;
            joining = viewer();
            sampler.add(joining);
            break;
          case 'snapshot':
            for (const r of sampler.snapshot()!.rows) compare(r, 'snapshot');
            break;
        }
      };
      // Some steps before anyone watches (nothing is kept), then the first viewer, then the rest.
      const split = steps.length % 8;
      for (const s of steps.slice(0, split)) if (s.kind === 'open' || s.kind === 'requests') act(s);
      model.tick(clock.now(), openOnes());
      sampler.add(staying);
      for (const s of steps.slice(split)) act(s);
      tick();
    }),
    { seed: 11, numRuns: 40 },
  );
  t.ok(rowsChecked > 10_000, `40 random runs, ${rowsChecked} rows checked`);
});

t.test('a claim refused while watched leaves the row anonymous, with no value', async (t) => {
  const { clock, monitor, sampler, open } = setup();
  const v = viewer();
  sampler.add(v);
  open(1, 'alice', 5);
  clock.advance(UPDATE_MS);
  t.match(v.updates.at(-1)!.rows, [{ conn: 1, id: 'alice', value: 5 }]);
  // The store refused the id (ID_LIMIT): the connection is no one again (connection.ts).
  monitor.identified(1, null);
  clock.advance(UPDATE_MS);
  t.match(v.updates.at(-1)!.rows, [{ conn: 1, id: null, value: null }]);
  // A viewer joining now gets the chart: the value until the refusal, then none.
  const late = viewer();
  sampler.add(late);
  clock.advance(UPDATE_MS);
  t.same(late.updates.at(-1)!.rows[0]!.history!.slice(-3), [5, null, null]);
});
