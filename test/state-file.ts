import t from 'tap';
import fc from 'fast-check';
import { parseState, serializeState, StateFileError } from '../src/store/state-file.js';
import { StateTable } from '../src/store/state-table.js';

const id = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
const entries = fc.array(fc.tuple(id, fc.integer({ min: 0, max: 99 })), { maxLength: 1500 });

t.test('property: what serialize writes, parse reads back, and JSON.parse agrees', async (t) => {
  fc.assert(
    fc.property(entries, (list) => {
      const table = new StateTable();
      for (const [k, v] of list) table.set(k, v);
      const text = table.serialize().toString();
      const back = [...parseState(text)];
      const viaJson = Object.entries(JSON.parse(text) as Record<string, number>);
      const sort = (xs: [string, number][]) => [...xs].sort(([a], [b]) => (a < b ? -1 : 1));
      return (
        JSON.stringify(back) === JSON.stringify([...table]) &&
        JSON.stringify(sort(back)) === JSON.stringify(sort(viaJson))
      );
    }),
    { numRuns: 200 },
  );
  t.pass('200 random tables round-trip');
});

t.test('values rewritten in place equal a fresh table after any sequence of sets', async (t) => {
  fc.assert(
    fc.property(entries, entries, (first, second) => {
      const table = new StateTable();
      for (const [k, v] of first) table.set(k, v);
      table.serialize(); // cache every block
      for (const [k, v] of second) table.set(k, v);
      const fresh = new StateTable();
      for (const [k, v] of table) fresh.set(k, v);
      return table.serialize().equals(fresh.serialize());
    }),
    { numRuns: 200 },
  );
  t.pass('cached blocks never go stale');
});

t.test('hand-edited JSON in any layout is read; the same rules apply', async (t) => {
  t.same(
    [...parseState('{"a":1,"b":2}')],
    [
      ['a', 1],
      ['b', 2],
    ],
  );
  t.same([...parseState('{\n    "a": 1.0\n}')], [['a', 1]], 'a JSON number that is an integer');
  t.same([...parseState('{\n  "a": 1\n}')], [['a', 1]], 'no trailing newline');
  t.same([...parseState('{}')], []);
  t.same(
    [...parseState('{"a": 1, "a": 2}')],
    [['a', 2]],
    'a repeated key: the last wins, as in JSON',
  );
  t.same([...parseState('{"__proto__": 5}')], [['__proto__', 5]]);
});

t.test('the fast path never accepts what JSON would not', async (t) => {
  const bad = [
    '{\n  "a": 1\n  "b": 2\n}\n', // missing comma
    '{\n  "a": 1,\n}\n', // trailing comma
    '{\n  "a": 1,\n  "b": 2,\n}\n',
    '{\n  "a": 100\n}\n',
    '{\n  "a/b": 1\n}\n',
    '{\n  "a": 1\n',
  ];
  for (const text of bad) t.throws(() => parseState(text), StateFileError, JSON.stringify(text));
});

t.test('errors name the problem', async (t) => {
  t.throws(() => parseState('{"alice": 4'), { message: /not valid JSON/ });
  t.throws(() => parseState('[1]'), { message: /not a JSON object/ });
  t.throws(() => parseState('{"a": -1}'), { message: /value of "a" is not an integer 0-99/ });
  t.throws(() => parseState('{"a": "5"}'), { message: /value of "a"/ });
  t.throws(() => parseState('{"": 5}'), { message: /invalid id ""/ });
});

t.test('serializeState is readable JSON, one id per line', async (t) => {
  t.equal(serializeState([]), '{}\n');
  t.equal(
    serializeState([
      ['a', 1],
      ['b', 42],
    ]),
    '{\n  "a":  1,\n  "b": 42\n}\n',
  );
});
