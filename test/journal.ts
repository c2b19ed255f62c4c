import t from 'tap';
import { promises as fsp, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRecords, JournalParser } from '../src/store/journal-format.js';
import {
  JournalFile,
  journalPath,
  listGenerations,
  replayGeneration,
} from '../src/store/journal.js';
import { tempDir } from './fixtures/server.js';

function parse(chunks: Buffer[]) {
  const records: Array<[string, number]> = [];
  const parser = new JournalParser((id, value) => records.push([id, value]));
  for (const chunk of chunks) parser.push(chunk);
  const end = parser.end();
  return { records, goodBytes: end.goodBytes, cutBytes: end.cutBytes, count: end.records };
}

const RECORDS: Array<[string, number]> = [
  ['alice', 42],
  ['b', 7],
  ['x'.repeat(64), 0],
  ['last.id-9_Z', 99],
];
const whole = encodeRecords(RECORDS);
const head = encodeRecords(RECORDS.slice(0, -1));

t.test('records round-trip, and read the same however the bytes are split', async (t) => {
  t.match(encodeRecords([['alice', 42]]).toString(), /^alice 42 [0-9a-f]{8}\n$/, 'one line');
  for (let cut = 0; cut <= whole.length; cut++) {
    const r = parse([whole.subarray(0, cut), whole.subarray(cut)]);
    t.same(r.records, RECORDS, `split at ${cut}`);
    t.same([r.goodBytes, r.cutBytes], [whole.length, 0]);
  }
  const bytes = parse([...whole].map((b) => Buffer.from([b])));
  t.same(bytes.records, RECORDS, 'one byte at a time');
});

t.test('a torn tail at every byte boundary of the last record is cut there', async (t) => {
  const last = whole.length - head.length;
  for (let k = 0; k < last; k++) {
    const torn = whole.subarray(0, head.length + k);
    for (const split of [0, head.length, head.length + (k >> 1)]) {
      const r = parse([torn.subarray(0, split), torn.subarray(split)]);
      t.same(r.records, RECORDS.slice(0, -1), `${k} bytes of the last record (split ${split})`);
      t.same([r.goodBytes, r.cutBytes], [head.length, k]);
    }
  }
});

t.test('a damaged last record is cut: every byte changed, zeros, garbage', async (t) => {
  for (let i = head.length; i < whole.length - 1; i++) {
    const bad = Buffer.from(whole);
    bad[i] = bad[i] === 0x31 ? 0x32 : 0x31; // a digit that differs: still the line's shape
    const r = parse([bad]);
    t.same(r.records, RECORDS.slice(0, -1), `byte ${i} changed`);
    t.equal(r.goodBytes, head.length);
  }
  const zeros = parse([head, Buffer.alloc(4096)]);
  t.same([zeros.count, zeros.goodBytes, zeros.cutBytes], [3, head.length, 4096]);
  const long = parse([head, Buffer.alloc(1000, 'a')]);
  t.same([long.goodBytes, long.cutBytes], [head.length, 1000], 'a line too long to be a record');
});

t.test('everything after a bad line is cut, even records that look whole', async (t) => {
  const r = parse([head, Buffer.from('garbage\n'), encodeRecords([['late', 1]])]);
  t.same(r.records, RECORDS.slice(0, -1));
  t.equal(r.goodBytes, head.length);
});

t.test('generations are listed in numeric order; other names ignored', async (t) => {
  const dir = tempDir(t);
  const state = join(dir, 'values.json');
  for (const n of ['values.json.journal.10', 'values.json.journal.9', 'values.json.journal.1'])
    writeFileSync(join(dir, n), '');
  for (const n of ['values.json.journal.01', 'values.json.journal.x', 'other.json.journal.2'])
    writeFileSync(join(dir, n), '');
  t.same(await listGenerations(state, fsp), [1, 9, 10]);
});

t.test('replay cuts a torn tail off the file itself', async (t) => {
  const dir = tempDir(t);
  const path = journalPath(join(dir, 'values.json'), 1);
  writeFileSync(path, Buffer.concat([head, whole.subarray(head.length, whole.length - 3)]));
  const seen: Array<[string, number]> = [];
  const end = await replayGeneration(path, (id, v) => seen.push([id, v]), fsp);
  t.same(seen, RECORDS.slice(0, -1));
  t.same([end.goodBytes, end.cutBytes], [head.length, whole.length - 3 - head.length]);
  t.equal(statSync(path).size, head.length, 'the file ends at the last whole record');
});

t.test('an append that failed half-way is cut before the next append', async (t) => {
  const dir = tempDir(t);
  const state = join(dir, 'values.json');
  let short = false;
  const fs = {
    ...fsp,
    open: (async (...args: Parameters<typeof fsp.open>) => {
      const handle = await fsp.open(...args);
      return new Proxy(handle, {
        get(target, prop) {
          const value = Reflect.get(target, prop) as unknown;
          if (typeof value !== 'function') return value;
          if (prop === 'write' && short)
            return async (data: Buffer, offset: number) => {
              short = false;
              await target.write(data, offset, 5); // part of a record lands, then the disk fails
              throw Object.assign(new Error('injected'), { code: 'EIO' });
            };
          return (value as (...a: unknown[]) => unknown).bind(target);
        },
      });
    }) as typeof fsp.open,
  };
  const journal = await JournalFile.create(state, 1, fs, 0);
  await journal.append(encodeRecords([['a', 1]]));
  short = true;
  await t.rejects(journal.append(encodeRecords([['b', 2]])), { code: 'EIO' });
  await journal.append(encodeRecords([['c', 3]]));
  await journal.close();
  const r = parse([readFileSync(journalPath(state, 1))]);
  t.same(r.records, [
    ['a', 1],
    ['c', 3],
  ]);
  t.equal(r.cutBytes, 0, 'no torn bytes between records');
  t.equal(statSync(journalPath(state, 1)).mode & 0o777, 0o600);
  t.same(readdirSync(dir), ['values.json.journal.1']);
});
