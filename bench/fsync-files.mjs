#!/usr/bin/env node
/**
 * What a commit's disk work costs with nothing else running: an append and an fdatasync to one
 * file, against the same to two files at once (the journal and the message log, as a commit does
 * them), through Node's thread pool as the server calls them. Two more variants write the same
 * bytes over a region written and synced beforehand, so the file's size never changes and the
 * fdatasync has no metadata to write: both files so, and the journal alone so. They show what a
 * second file costs beside the first, and why. The variants alternate in rounds so that drift on
 * the machine falls on all of them; each prints its per-round means, sorted.
 *
 *   node bench/fsync-files.mjs [--dir DIR] [--rounds 5] [--commits 200]
 *
 * DIR (default: a new folder under the current one, removed after) should be on the disk the
 * server's state and log would use: tmpfs has no fsync to measure.
 */
import { Buffer } from 'node:buffer';
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    commits: { type: 'string', default: '200' },
  },
});
const dir = values.dir ?? mkdtempSync(join(process.cwd(), '.fsync-files-'));
const rounds = Number(values.rounds);
const commits = Number(values.commits);

// Sizes as at 50 × 1 (bench/loadgen.mjs's ids): ~25 journal records (id, value, CRC-32: ~30
// bytes each) and ~50 message-log records (~95 bytes each: a request's and its reply's).
const journalBytes = Buffer.alloc(750, 'j');
const logBytes = Buffer.alloc(4800, 'l');

const journal = await fsp.open(join(dir, 'journal'), 'a', 0o600);
const log = await fsp.open(join(dir, 'log'), 'a', 0o600);
const appendSync = (file, bytes) => file.write(bytes).then(() => file.datasync());

/** A file whose every byte the run will write is written and synced first; writes go over it. */
async function inPlace(name, bytes, uses) {
  const file = await fsp.open(join(dir, name), 'w', 0o600);
  await file.write(Buffer.alloc(bytes.length * uses * commits * rounds));
  await file.datasync();
  let at = 0;
  const overwriteSync = () => {
    const position = at;
    at += bytes.length;
    return file.write(bytes, 0, bytes.length, position).then(() => file.datasync());
  };
  return { file, overwriteSync };
}
const journalInPlace = await inPlace('journal.in-place', journalBytes, 2);
const logInPlace = await inPlace('log.in-place', logBytes, 1);

const variants = {
  'log only: append, fdatasync': () => appendSync(log, logBytes),
  'journal and log at once (as built)': () =>
    Promise.all([appendSync(journal, journalBytes), appendSync(log, logBytes)]),
  'journal in place, log appended': () =>
    Promise.all([journalInPlace.overwriteSync(), appendSync(log, logBytes)]),
  'both in place': () => Promise.all([journalInPlace.overwriteSync(), logInPlace.overwriteSync()]),
};

const means = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
try {
  for (let round = 0; round < rounds; round++) {
    for (const [name, commit] of Object.entries(variants)) {
      const start = performance.now();
      for (let i = 0; i < commits; i++) await commit();
      means[name].push((performance.now() - start) / commits);
    }
  }
} finally {
  for (const file of [journal, log, journalInPlace.file, logInPlace.file]) await file.close();
  if (values.dir === undefined) rmSync(dir, { recursive: true });
}
for (const [name, ms] of Object.entries(means)) {
  ms.sort((a, b) => a - b);
  process.stdout.write(
    `${name.padEnd(36)} ms per commit: ${ms.map((m) => m.toFixed(3)).join(' ')}\n`,
  );
}
