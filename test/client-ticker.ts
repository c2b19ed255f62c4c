import t from 'tap';
import type { Clock } from '../src/clock.js';
import { Ticker } from '../src/client/ticker.js';
import { FakeClock, seededRandom } from './fixtures/fake-clock.js';

const P = 500;

/** A clock whose timers fire `lateness()` ms after they are due, like a busy event loop. */
function lateClock(inner: FakeClock, lateness: () => number): Clock {
  return {
    now: () => inner.now(),
    setTimeout: (fn, ms) => inner.setTimeout(fn, ms + lateness()),
    clearTimeout: (handle) => inner.clearTimeout(handle),
  };
}

function ticker(clock: Clock) {
  const at: number[] = [];
  const tk = new Ticker(clock, P, () => at.push(clock.now()));
  return { tk, at };
}

t.test('1,000 ticks on a late clock keep the grid: no drift, no skips', async (t) => {
  const fake = new FakeClock();
  const random = seededRandom(7);
  const maxLate = 400;
  const { tk, at } = ticker(lateClock(fake, () => Math.floor(random() * maxLate)));
  const origin = fake.now();
  tk.start();
  fake.advance(1000 * P + maxLate);
  t.equal(at.length, 1000);
  const offGrid = at.filter(
    (time, i) => time < origin + (i + 1) * P || time >= origin + (i + 1) * P + maxLate,
  );
  t.same(offGrid, [], 'tick k runs in [origin + k×P, origin + k×P + lateness)');
  const mean = (at[at.length - 1]! - at[0]!) / (at.length - 1);
  t.ok(Math.abs(mean - P) < maxLate / 999 + 1e-9, `mean gap ${mean} is ${P}`);
});

t.test('a stall skips the missed ticks: one tick, then back on the grid', async (t) => {
  const fake = new FakeClock();
  let stall = 0;
  const { tk, at } = ticker(lateClock(fake, () => stall));
  const origin = fake.now();
  tk.start();
  fake.advance(3 * P - 1);
  // Tick 3 sets the timer for tick 4 (due 2000 ms); it fires 2300 ms late, at 4300 ms, when grid
  // points 4..8 have all passed.
  stall = 2300;
  fake.advance(1);
  stall = 0;
  fake.advance(3500);
  const offsets = at.map((time) => time - origin);
  t.same(offsets.slice(0, 4), [500, 1000, 1500, 4300], 'one late tick, no burst');
  t.same(offsets.slice(4, 6), [4500, 5000], 'the next tick lands on the grid');
  const slots = offsets.map((o) => Math.floor(o / P));
  t.ok(
    slots.every((s, i) => i === 0 || s > slots[i - 1]!),
    'at most one tick per grid slot',
  );
});

t.test('stop and start keep the grid and skip what was missed', async (t) => {
  const fake = new FakeClock();
  const { tk, at } = ticker(fake);
  const origin = fake.now();
  tk.start();
  fake.advance(1200); // ticks at 500, 1000
  tk.stop();
  t.notOk(tk.running);
  fake.advance(2000); // now 3200: grid points 1500..3000 are missed while stopped
  tk.start();
  fake.advance(1000);
  t.same(
    at.map((time) => time - origin),
    [500, 1000, 3500, 4000],
  );
  t.equal(fake.pending, 1, 'one timer pending while running');
  tk.stop();
  t.equal(fake.pending, 0, 'stop clears it');
});

t.test('a restart exactly on a grid point does not tick at once', async (t) => {
  const fake = new FakeClock();
  const { tk, at } = ticker(fake);
  const origin = fake.now();
  tk.start();
  tk.stop();
  fake.advance(2 * P);
  tk.start();
  fake.advance(P);
  t.same(
    at.map((time) => time - origin),
    [3 * P],
  );
});

t.test('a timer that fires early is set again without a tick', async (t) => {
  const fake = new FakeClock();
  let early = 1;
  const { tk, at } = ticker(lateClock(fake, () => -early--));
  const origin = fake.now();
  tk.start();
  fake.advance(P + 1);
  t.same(
    at.map((time) => time - origin),
    [P],
  );
});

t.test('onTick may stop the ticker', async (t) => {
  const fake = new FakeClock();
  let count = 0;
  const tk: Ticker = new Ticker(fake, P, () => {
    count++;
    tk.stop();
  });
  tk.start();
  fake.advance(10 * P);
  t.equal(count, 1);
  t.equal(fake.pending, 0);
});
