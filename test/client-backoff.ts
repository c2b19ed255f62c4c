import t from 'tap';
import { Backoff } from '../src/client/backoff.js';
import { CLIENT_DEFAULTS } from '../src/client/defaults.js';
import { seededRandom } from './fixtures/fake-clock.js';

const options = { baseMs: CLIENT_DEFAULTS.backoffBaseMs, maxMs: CLIENT_DEFAULTS.backoffMaxMs };
const STEPS = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];

t.test('the step doubles from 0.5 s to the 30 s cap; the jitter is the upper half', async (t) => {
  const low = new Backoff(options, () => 0);
  t.same(
    STEPS.map(() => low.next()),
    STEPS.map((s) => s / 2),
    'random 0 gives half the step',
  );
  const high = new Backoff(options, () => 1 - 2 ** -53);
  t.same(
    STEPS.map(() => high.next()),
    STEPS,
    'random just under 1 gives the whole step',
  );
});

t.test('seeded draws stay within [step/2, step] and spread over it', async (t) => {
  const random = seededRandom(42);
  const fractions: number[] = [];
  const outside: string[] = [];
  for (let run = 0; run < 200; run++) {
    const backoff = new Backoff(options, random);
    for (const step of STEPS) {
      const delay = backoff.next();
      if (delay < step / 2 || delay > step) outside.push(`${delay} for step ${step}`);
      fractions.push(delay / step);
    }
  }
  t.same(outside, [], 'every delay within [step/2, step]');
  t.ok(Math.min(...fractions) < 0.55, 'some draws near the bottom');
  t.ok(Math.max(...fractions) > 0.95, 'some draws near the top');
});

t.test('reset starts the schedule over; attempt counts the failures', async (t) => {
  const backoff = new Backoff(options, () => 0);
  backoff.next();
  backoff.next();
  backoff.next();
  t.equal(backoff.attempt, 3);
  backoff.reset();
  t.equal(backoff.attempt, 0);
  t.equal(backoff.next(), 250);
});

t.test('a server down for days keeps the cap, no overflow', async (t) => {
  const backoff = new Backoff(options, () => 0.5);
  let last = 0;
  for (let i = 0; i < 5000; i++) last = backoff.next();
  t.equal(last, 22500);
});
