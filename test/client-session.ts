import fc from 'fast-check';
import t from 'tap';
import { Session } from '../src/client/session.js';
import type { ClientEvent } from '../src/client/types.js';
import { FakeClock, seededRandom } from './fixtures/fake-clock.js';

const timing = { switchMinMs: 3000, switchMaxMs: 5000 };

function session(start: number, clock = new FakeClock(), random = seededRandom(1)) {
  const sent: string[] = [];
  const events: ClientEvent[] = [];
  const s = new Session(
    { clock, random, timing, send: (l) => sent.push(l), emit: (e) => events.push(e) },
    start,
  );
  return { s, sent, events, clock };
}

const values = (sent: string[]) =>
  sent.filter((l) => l.startsWith('VALUE ')).map((l) => Number(l.slice(6)));

t.test('starts at the given value with increment 1', async (t) => {
  const { s, sent } = session(41);
  t.equal(s.increment, 1);
  s.tick();
  s.tick();
  t.same(sent, ['VALUE 42', 'VALUE 43']);
});

t.test('wraps from 99 to 0, also with large increments', async (t) => {
  const { s, sent } = session(98);
  s.tick();
  s.tick();
  s.setIncrement(99);
  s.tick();
  s.tick();
  s.setIncrement(98);
  s.tick();
  s.setIncrement(0);
  s.tick();
  t.same(values(sent), [99, 0, 99, 98, 96, 96], 'increment 0 keeps the counter');
});

t.test('property: values stay in 0-99 and follow counter + increment mod 100', async () => {
  const step = fc.oneof(fc.constant<'tick'>('tick'), fc.integer({ min: 0, max: 99 }));
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 99 }),
      fc.array(step, { maxLength: 300 }),
      (start, steps) => {
        const { s, sent } = session(start);
        let expected = start;
        let increment = 1;
        for (const st of steps) {
          if (st === 'tick') {
            s.tick();
            expected = (expected + increment) % 100;
            if (sent.at(-1) !== `VALUE ${expected}`) return false;
          } else {
            s.setIncrement(st);
            increment = st;
          }
        }
        return values(sent).every((v) => Number.isInteger(v) && v >= 0 && v <= 99);
      },
    ),
  );
});

t.test('reports each increment change', async (t) => {
  const { s, events } = session(0);
  s.setIncrement(42);
  s.setIncrement(7);
  t.same(events, [
    { type: 'increment', from: 1, to: 42 },
    { type: 'increment', from: 42, to: 7 },
  ]);
});

t.test('switches at random delays in the window; close stops them', async (t) => {
  const { s, sent, clock } = session(0);
  clock.advance(timing.switchMinMs - 1);
  t.same(sent, [], 'nothing before the window opens');
  clock.advance(timing.switchMaxMs - timing.switchMinMs + 1);
  t.equal(sent.length, 1, 'one switch by the end of the window');
  t.match(sent[0], /^(EVEN|ODD)$/);
  s.close();
  t.equal(clock.pending, 0, 'close clears the switch timer');
  clock.advance(60_000);
  t.equal(sent.length, 1);
});
