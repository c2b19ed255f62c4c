import t from 'tap';
import {
  EntryRun,
  FNV_OFFSET,
  hashId,
  MAX_RUN_LINES,
  scanEntries,
  type IsNewId,
} from '../src/store/state-lines.js';

// The own-layout scanner alone: which lines it takes, where it stops, and what it records of
// each. test/state-file.ts checks the loader built on it against JSON.parse.

const everyIdIsNew = () => true;

/** Scans the UTF-8 bytes of `text`, as the loader reads them. */
function scan(text: string, isNew: IsNewId = everyIdIsNew) {
  const bytes = Buffer.from(text);
  const run = scanEntries(bytes, 0, bytes.lastIndexOf('\n') + 1, new EntryRun(), isNew);
  return { lines: run.lines, at: run.at, comma: run.comma, rest: bytes.toString('utf8', run.at) };
}

t.test('takes entry lines exactly as serialize writes them, up to the last one', async (t) => {
  const text = '  "alice":  7,\n  "b.o_b-2": 42\n}\n';
  const run = new EntryRun();
  scanEntries(Buffer.from(text), 0, text.length, run, everyIdIsNew);
  t.equal(run.lines, 2);
  t.equal(text.slice(run.at), '}\n', 'stops after the entry with no comma');
  t.equal(run.comma, false);
  t.equal(text.slice(run.value[0]!, run.value[0]! + 2), ' 7', 'the value field');
  t.equal(text.slice(run.value[1]!, run.value[1]! + 2), '42');
  t.equal(run.hash[1], hashId('b.o_b-2'), 'the hash of the id, as the table hashes a string');
  t.equal(run.idLength[0], 5);
  t.same(Array.from(run.lineStart.subarray(0, 2)), [0, text.indexOf('  "b')]);
});

t.test('stops at the first line not in our exact layout', async (t) => {
  const cases: Array<[string, string]> = [
    ['  "a": 7,\n', 'one space and one digit: JSON, not our field'],
    ['  "a":   7,\n', 'three spaces'],
    ['  "a": 07,\n', 'a leading zero'],
    ['  "a": 100,\n', 'three digits'],
    ['  "a":  7,\r\n', 'CRLF'],
    ['   "a":  7,\n', 'indented more'],
    ['\t"a":  7,\n', 'a tab'],
    ['  "a b":  7,\n', 'an invalid id'],
    ['  "":  7,\n', 'an empty id'],
    [`  "${'x'.repeat(65)}":  7,\n`, 'an id of 65 characters'],
    ['  "é":  7,\n', 'a character outside the id set'],
    ['  "a" :  7,\n', 'a space before the colon'],
    ['  "a":  7,,\n', 'two commas'],
    ['}\n', 'the closing brace'],
  ];
  for (const [line, why] of cases) {
    t.same(scan(`  "ok": 42,\n${line}  "z":  1\n`).lines, 1, why);
  }
  t.equal(scan(`  "${'x'.repeat(64)}":  7\n`).lines, 1, 'an id of 64 characters is taken');
});

t.test('takes only whole lines, and at most MAX_RUN_LINES', async (t) => {
  t.same(scan('  "a":  1,\n  "b":  2'), {
    lines: 1,
    at: 11,
    comma: true,
    rest: '  "b":  2',
  });
  const many = '  "a":  1,\n'.repeat(MAX_RUN_LINES + 3);
  const run = scan(many);
  t.equal(run.lines, MAX_RUN_LINES);
  t.equal(run.at, MAX_RUN_LINES * 11);
  t.equal(run.comma, true, 'more may follow');
});

t.test('a repeated id stops the run before it, and is asked about with its place', async (t) => {
  const asked: Array<[string, number]> = [];
  const text = '  "a":  1,\n  "b":  2,\n  "a":  3,\n  "c":  4\n';
  const run = scan(text, (idStart, idLength, hash, n) => {
    const id = text.slice(idStart, idStart + idLength);
    t.equal(hash, hashId(id));
    asked.push([id, n]);
    return !asked.slice(0, -1).some(([seen]) => seen === id);
  });
  t.same(asked, [
    ['a', 0],
    ['b', 1],
    ['a', 2],
  ]);
  t.equal(run.lines, 2);
  t.equal(run.rest, '  "a":  3,\n  "c":  4\n', 'the repeat is left for the general path');
});

t.test('ids built to collide under FNV-1a do not collide under the seeded hash', async (t) => {
  // As a hostile peer would: chain 4-character blocks that collide from the hash state before
  // them (a birthday search per block), so all 2^8 combinations share one unseeded hash.
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-';
  let x = 0x9e3779b9; // xorshift32: a fixed, repeatable search
  const next = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
  const pairs: Array<[string, string]> = [];
  let state = FNV_OFFSET;
  while (pairs.length < 8) {
    const seen = new Map<number, string>();
    for (;;) {
      let block = '';
      for (let i = 0; i < 4; i++) block += alphabet[next() % 64];
      const h = hashId(block, state);
      const other = seen.get(h);
      if (other !== undefined && other !== block) {
        pairs.push([other, block]);
        state = h;
        break;
      }
      seen.set(h, block);
    }
  }
  const ids = Array.from({ length: 256 }, (_, m) => pairs.map((p, b) => p[(m >> b) & 1]).join(''));
  t.equal(new Set(ids.map((id) => hashId(id, FNV_OFFSET))).size, 1, 'one hash from the basis');
  t.ok(new Set(ids.map((id) => hashId(id))).size >= 250, 'all but a few apart when seeded');
});
