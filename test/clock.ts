import t from 'tap';
import { randomInt, turnClock } from '../src/clock.js';

t.test('turnClock reads the time once per run of code, again after its microtasks', async (t) => {
  let reads = 0;
  const now = turnClock(() => 1000 + ++reads);
  t.equal(now(), 1001);
  t.equal(now(), 1001, 'the same run: no second reading');
  t.equal(reads, 1);
  await Promise.resolve(); // a microtask queued before the expiry: still the same run's time
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(now(), 1002, 'a later turn reads the time again');
  t.equal(reads, 2);
});

t.test('randomInt stays in [0, n) even for a source that returns its upper bound', async (t) => {
  t.equal(
    randomInt(() => 0, 50),
    0,
  );
  t.equal(
    randomInt(() => 0.999999, 50),
    49,
  );
  t.equal(
    randomInt(() => 1, 50),
    49,
  );
});
