import t from 'tap';
import fc from 'fast-check';
import type { FileHandle } from 'node:fs/promises';
import {
  parseState,
  readState,
  serializeState,
  StateFileError,
  StateParser,
} from '../src/store/state-file.js';
import { FNV_OFFSET, HASH_SEED, hashId } from '../src/store/state-lines.js';
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

t.test('property: the table answers as a Map would, in the order ids were first set', async (t) => {
  // Few distinct ids (so most sets repeat one) and ids that end like others (`ab`, `xab`): the
  // index compares bytes before the id, and grows many times over 2,000 sets.
  const shortId = fc.stringMatching(/^[abx_.-]{1,4}$/);
  const ops = fc.array(fc.tuple(fc.oneof(shortId, id), fc.integer({ min: 0, max: 99 })), {
    maxLength: 2000,
    size: 'max', // fast-check's default size keeps arrays short: the index would never grow
  });
  fc.assert(
    fc.property(ops, (list) => {
      const table = new StateTable();
      const model = new Map<string, number>();
      for (const [k, v] of list) {
        const changed = model.get(k) !== v;
        if (table.set(k, v) !== changed) return false;
        model.set(k, v);
      }
      if (table.size !== model.size) return false;
      for (const [k, v] of model) if (table.get(k) !== v) return false;
      if (table.get('absent-id') !== model.get('absent-id')) return false;
      const json = JSON.parse(table.serialize().toString()) as Record<string, number>;
      return (
        JSON.stringify([...table]) === JSON.stringify([...model]) &&
        JSON.stringify([...table.values()]) === JSON.stringify([...model.values()]) &&
        Object.keys(json).length === model.size
      );
    }),
    { numRuns: 300 },
  );
  t.pass('300 random sequences agree with a Map');
});

t.test(
  'more ids than the table remembers by string still read and write their own values',
  async (t) => {
    const table = new StateTable();
    const ids = Array.from({ length: 40_000 }, (_, i) => `client-${i}`);
    for (const [i, id] of ids.entries()) table.set(id, i % 100);
    // Again in another order, with other strings of the same ids: each must land on its own entry.
    let wrong = 0;
    for (let i = ids.length - 1; i >= 0; i--) if (!table.set(`client-${i}`, (i + 1) % 100)) wrong++;
    for (const [i, id] of ids.entries()) if (table.get(id) !== (i + 1) % 100) wrong++;
    t.equal(wrong, 0);
    t.equal(table.size, ids.length);
  },
);

t.test('two ids with the same hash are two entries', async (t) => {
  // FNV-1a 32 from its own basis maps both pairs to one hash (found by search): the index must
  // compare the bytes. A server seeds its hash (HASH_SEED); this table takes the basis instead.
  const table = new StateTable(4096, FNV_OFFSET);
  t.equal(hashId('id43zx', FNV_OFFSET), hashId('idbpad', FNV_OFFSET), 'they collide unseeded');
  t.not(HASH_SEED, FNV_OFFSET, 'the server seeds it');
  t.ok(table.set('id43zx', 1));
  t.ok(table.set('idbpad', 2));
  t.ok(table.set('id43zy', 3));
  t.ok(table.set('idbpae', 4));
  t.notOk(table.set('idbpad', 2), 'the same value again: unchanged');
  t.same(
    [...table],
    [
      ['id43zx', 1],
      ['idbpad', 2],
      ['id43zy', 3],
      ['idbpae', 4],
    ],
  );
  t.equal(table.get('id43zx'), 1);
  t.equal(table.get('idbpae'), 4);
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

// ---- Streaming load (issue 11): the parser takes text in pieces and never the whole file. ----

/** The loader before streaming: JSON.parse of the whole text, then the same checks. */
function reference(text: string): Map<string, number> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new StateFileError('not valid JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new StateFileError('not a JSON object of id -> value');
  }
  const out = new Map<string, number>();
  for (const [id, value] of Object.entries(data)) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new StateFileError(`invalid id`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 99)
      throw new StateFileError(`value of "${id}"`);
    out.set(id, value);
  }
  return out;
}

/** What a parse came to: the entries sorted by id, or the kind of error. */
function outcome(parse: () => Iterable<[string, number]>): string {
  try {
    return JSON.stringify([...parse()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  } catch (err) {
    if (!(err instanceof StateFileError)) throw err;
    // Which bad entry is named first may differ (JSON.parse moves ids like "7" first).
    const kind = /^(not valid JSON|not a JSON object|invalid id|value of)/.exec(err.message);
    return kind === null ? err.message : kind[1]!.replace(/^value of$/, 'invalid id');
  }
}

const key = fc.oneof(
  id,
  fc.constantFrom(
    '__proto__',
    'constructor',
    '7',
    '01',
    'a/b',
    '',
    'é',
    'a\\u0062',
    'x'.repeat(65),
  ),
  fc.string({ maxLength: 6 }),
);
const rawValue = fc.oneof(
  fc.integer({ min: 0, max: 99 }).map(String),
  fc.constantFrom('100', '-1', '-0', '1.5', '1.0', '1e1', '1e2', '0.5e1', '"5"', 'null', 'true'),
  fc.constantFrom('{}', '[]', '{"a": 1}', '[1, [2]]', '{"a": {"b": "}"}}', '"\\"}"'),
);
const space = fc.constantFrom('', ' ', '\n', '  ', '\r\n', '\t');
/** Flat-object texts in any layout, with repeated and bad entries, and damaged copies of them. */
const objectText = fc
  .tuple(fc.array(fc.tuple(key, rawValue, space, space), { maxLength: 8 }), space)
  .map(([pairs, s]) => {
    const body = pairs.map(([k, v, a, b]) => `${a}${JSON.stringify(k)}${b}:${a}${v}`).join(',');
    return `{${body}${s}}${s}`;
  });
const anyText = fc.oneof(
  objectText,
  entries.map((list) => serializeState(list)),
  fc.json(),
  fc
    .tuple(objectText, fc.nat(), fc.string({ maxLength: 2 }))
    .map(([text, at, insert]) => text.slice(0, at % (text.length + 1)) + insert),
  fc.tuple(objectText, fc.nat(), fc.string({ maxLength: 2 })).map(([text, at, insert]) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + insert + text.slice(i + 1);
  }),
);

t.test('property: the streaming parser agrees with JSON.parse on any text', async (t) => {
  fc.assert(
    fc.property(
      anyText,
      (text) => outcome(() => parseState(text)) === outcome(() => reference(text)),
    ),
    { numRuns: 3000 },
  );
  t.pass('3000 texts: the same entries or the same kind of error');
});

/** Our layout's lines for `list`, repeats kept, with one line optionally replaced by `edit`. */
const ownLayout = fc
  .tuple(
    fc.array(
      fc.tuple(fc.oneof(fc.stringMatching(/^[ab]{1,2}$/), id), fc.integer({ min: 0, max: 99 })),
      {
        minLength: 1,
        maxLength: 1400,
        size: 'max', // past one run (512 lines) of the fast path
      },
    ),
    fc.nat(),
    fc.constantFrom(
      null,
      '  "x": 7',
      '  "a":  5',
      '  "y":   1',
      '\t"z": 1',
      '  "bad id": 1',
      '  "q": 100',
    ),
  )
  .map(([list, at, edit]) => {
    const lines = list.map(([k, v]) => `  "${k}": ${v < 10 ? ' ' : ''}${v}`);
    if (edit !== null) lines[at % lines.length] = edit;
    return `{\n${lines.join(',\n')}\n}\n`;
  });

t.test(
  'property: our layout with repeated ids and odd lines reads as JSON.parse reads it',
  async (t) => {
    fc.assert(
      fc.property(ownLayout, fc.nat(), (text, cut) => {
        const whole = outcome(() => parseState(text));
        const bytes = Buffer.from(text);
        const at = cut % (bytes.length + 1);
        const parser = new StateParser();
        const split = outcome(() => {
          parser.push(bytes.subarray(0, at));
          parser.push(bytes.subarray(at));
          return parser.end();
        });
        return whole === outcome(() => reference(text)) && split === whole;
      }),
      { numRuns: 300 },
    );
    t.pass('300 texts, whole and cut anywhere');
  },
);

/** The parse of the file pushed in the given pieces: entries, or the exact error message. */
function pieces(parts: Buffer[]): string {
  const parser = new StateParser();
  try {
    for (const part of parts) parser.push(part);
    return JSON.stringify([...parser.end()]);
  } catch (err) {
    if (!(err instanceof StateFileError)) throw err;
    return `error: ${err.message}`;
  }
}

const SAMPLES = [
  serializeState([
    ['a', 1],
    ['b', 42],
    ['__proto__', 7],
  ]),
  '{}\n',
  '{\n}\n',
  '{\n  "a":  1,\n    "b": 2,\n  "c": 3\n}\n', // a hand edit in the middle of our layout
  '{\n  "a":  1,\n  "b": 2\n}\n\n', // our layout, then a blank line
  '{"a":1,"b":{"c":[1,2,{"d":"}"}]},"a":2}',
  '{ "a\\u0062": 5, "a": 1e1, "z": 0.5e1, "n": -0 }',
  '{"é": 1}',
  '{\n  "a": 1\n  "b": 2\n}\n',
  '{\n  "a": 1,\n}\n',
  '{"a": 100, "a": 5}',
  '{"a": 5, "a": 100}',
  '{"a": 1, "b": [1, 2',
  '[1, 2, 3]\n',
  '\ufeff{}',
  '{\n  "a":  1,\n  "b": 42,\n  "a":  3\n}\n', // a repeat in our layout: first place, last value
  '{\n  "a":  1,\n  "a":  2,\n  "a":  3,\n  "b":  4\n}\n',
  '{\n  "a":  1,\n  "b": 7,\n  "c": 42\n}\n', // one space, one digit: JSON, not our field
  '{\n  "a":  1,\n  "b":  2\n  "c":  3\n}\n', // a comma missing
  '{\n  "a":  1,\r\n  "b":  2\n}\n',
  `{\n  "${'i'.repeat(65)}":  1\n}\n`,
];

t.test('every sample reads the same, cut at every byte and byte by byte', async (t) => {
  for (const text of SAMPLES) {
    const bytes = Buffer.from(text);
    const whole = pieces([bytes]);
    for (let i = 0; i <= bytes.length; i++) {
      const cut = pieces([bytes.subarray(0, i), bytes.subarray(i)]);
      if (cut !== whole) t.fail(`${JSON.stringify(text)} cut at ${i}: ${cut} vs ${whole}`);
      const three = pieces([
        bytes.subarray(0, i),
        Buffer.alloc(0),
        bytes.subarray(i, i + 1),
        bytes.subarray(i + 1),
      ]);
      if (three !== whole) t.fail(`${JSON.stringify(text)} cut around ${i}: ${three}`);
    }
    const one = pieces([...bytes].map((b) => Buffer.of(b)));
    t.equal(one, whole, `${JSON.stringify(text)} byte by byte: ${whole}`);
  }
});

t.test('JSON rules: repeated ids, -0, escapes, the order of errors', async (t) => {
  t.same([...parseState('{"a": 100, "a": 5}')], [['a', 5]], 'a bad value replaced later is fine');
  t.throws(() => parseState('{"a": 5, "a": 100}'), { message: /value of "a"/ });
  t.same(
    [...parseState('{"a": 1, "b": 2, "a": 3}')],
    [
      ['a', 3],
      ['b', 2],
    ],
    'the first place, the last value',
  );
  t.same([...parseState('{"a\\u0062": 1}')], [['ab', 1]]);
  t.same(Object.is(parseState('{"a": -0}').get('a'), 0), true, '-0 reads as 0');
  t.throws(() => parseState('{"a/b": 1, "x": '), { message: /not valid JSON/ }, 'syntax first');
  t.throws(() => parseState('[{"a/b": 1}]'), { message: /not a JSON object/ });
  t.throws(() => parseState('{"a": 100, "b/c": 1}'), { message: /value of "a"/ }, 'file order');
  t.throws(() => parseState(`{"${'x'.repeat(200)}": 1}`), {
    message: `invalid id ${JSON.stringify('x'.repeat(200)).slice(0, 80)}`,
  });
  t.throws(() => parseState('{\n  "a": 1,\n  "b" 2\n}\n'), {
    message: /not valid JSON \(expected ':', found "2" at line 3 column 7\)/,
  });
});

/** A FileHandle's read over `bytes`, counting reads and the largest one asked for. */
function fakeFile(bytes: Buffer) {
  let at = 0;
  const stats = { reads: 0, largest: 0 };
  return {
    stats,
    read: async (buffer: Buffer, offset: number, length: number) => {
      stats.reads++;
      stats.largest = Math.max(stats.largest, length);
      const n = bytes.copy(buffer, offset, at, Math.min(at + length, bytes.length));
      at += n;
      return { bytesRead: n, buffer };
    },
  } as unknown as Pick<FileHandle, 'read'> & { stats: typeof stats };
}

t.test('readState reads in chunks and decodes UTF-8 split between them', async (t) => {
  const files = [
    ...SAMPLES.map((s) => Buffer.from(s)),
    Buffer.from('{"alice": 5}\xff', 'latin1'),
    Buffer.from('{"\xe9\xff": 5}', 'latin1'),
    Buffer.alloc(64),
  ];
  for (const bytes of files) {
    const whole = outcomeMessage(() => parseState(bytes.toString('utf8')));
    for (const chunk of [1, 2, 3, 5, 64]) {
      const file = fakeFile(bytes);
      const got = await readState(file, chunk).then(
        (table) => JSON.stringify([...table]),
        (err: Error) => `error: ${err.message}`,
      );
      if (got !== whole) t.fail(`${bytes.toString('hex')} by ${chunk}: ${got} vs ${whole}`);
      t.ok(file.stats.largest <= chunk, 'never asks for more than a chunk');
    }
  }
  const big = Buffer.from(serializeState(Array.from({ length: 1000 }, (_, i) => [`id${i}`, 1])));
  const file = fakeFile(big);
  t.equal((await readState(file, 4096)).size, 1000);
  t.equal(file.stats.reads, Math.ceil(big.length / 4096) + 1, 'one read per chunk, then EOF');
});

function outcomeMessage(parse: () => Iterable<[string, number]>): string {
  try {
    return JSON.stringify([...parse()]);
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}
