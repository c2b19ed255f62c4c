/**
 * Issue 11, hardening of the message log: each test reproduces a fault that was observed.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  promises as fsp,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  type PathLike,
} from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { LogFile, type LogFileOptions } from '../src/log/log-file.js';
import { FakeClock } from './fixtures/fake-clock.js';
import { overrideHandle } from './fixtures/failing-fs.js';
import { tempDir } from './fixtures/server.js';

/**
 * A disk whose writes (a turn of the event loop later) fail with ENOSPC while `full` is set, and
 * whose datasyncs fail while `broken` is set. `ops` records renames, opens and syncs in order.
 */
function fullDisk() {
  const disk = { full: false, broken: false, attempts: 0, ops: [] as string[] };
  const fs = {
    ...fsp,
    rename: async (from: PathLike, to: PathLike) => {
      disk.ops.push(`rename ${basename(String(from))} ${basename(String(to))}`);
      return fsp.rename(from, to);
    },
    open: (async (...args: Parameters<typeof fsp.open>) => {
      const real = await fsp.open(...args);
      const isDir = args[1] === 'r';
      if (!isDir) disk.ops.push('open');
      const sync = (prop: 'datasync' | 'sync') => async () => {
        disk.ops.push(isDir ? 'dirsync' : 'datasync');
        if (disk.broken) throw Object.assign(new Error('broken'), { code: 'EIO' });
        return real[prop]();
      };
      return overrideHandle(real, {
        write: (async (data: Buffer | string, offset?: number) => {
          await new Promise((r) => setImmediate(r));
          if (disk.full) {
            disk.attempts++;
            throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
          }
          return typeof data === 'string' ? real.write(data) : real.write(data, offset);
        }) as FileHandle['write'],
        datasync: sync('datasync'),
        sync: sync('sync'),
      });
    }) as typeof fsp.open,
  };
  return { fs, disk };
}

async function open(
  t: { teardown(fn: () => unknown): void },
  opts: Partial<LogFileOptions> = {},
  path = join(tempDir(t), 'm.log'),
) {
  const clock = new FakeClock();
  const errors: unknown[] = [];
  const log = await LogFile.open(path, {
    flushMs: 100,
    maxBufferedBytes: 64 * 1024,
    clock,
    onError: (e) => errors.push(e),
    ...opts,
  });
  t.teardown(() => log.close().catch(() => {}));
  return { log, path, clock, errors, read: () => readFileSync(path, 'utf8') };
}

t.test('a full disk: unwritten bytes stay under the cap across many failed flushes', async (t) => {
  const { fs, disk } = fullDisk();
  const max = 64 * 1024;
  const { log, read } = await open(t, { fs, maxBufferedBytes: max });
  const line = `${'x'.repeat(99)}\n`;
  disk.full = true;
  let n = 0;
  for (let round = 0; round < 20; round++) {
    const flushed = log.flush().catch(() => {});
    // Lines keep coming while each doomed write is in flight.
    for (let i = 0; i < 2000; i++) log.write(`${String(n++).padStart(8, '0')}${line}`);
    await flushed;
  }
  t.ok(disk.attempts >= 19, `${disk.attempts} failed writes`);
  disk.full = false;
  await log.flush().catch(() => {});
  await log.flush();
  const text = read();
  const kept = text.split('\n').filter((l) => l.length > 50);
  t.ok(
    text.length <= max + 100,
    `at most the cap reaches the file once space returns: ${text.length}`,
  );
  const seqs = kept.map((l) => Number(l.slice(0, 8)));
  t.same(
    seqs,
    [...seqs].sort((a, b) => a - b),
    'in order',
  );
  t.equal(new Set(seqs).size, seqs.length, 'none twice');
  t.match(text, /\{"event":"dropped","lines":\d+\}\n/, 'the drops are recorded');
});

/** Mounts a tmpfs of `size` on a fresh folder, unmounted in teardown: a disk that really fills. */
function smallDisk(t: { teardown(fn: () => unknown): void }, size: string): string {
  const dir = join(tempDir(t), 'disk');
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  t.teardown(() => execFileSync('umount', [dir]));
  return dir;
}

/** Fills the disk holding `dir` until ENOSPC; returns the filler's path (delete it to recover). */
function fill(dir: string): string {
  const filler = join(dir, 'filler');
  const chunk = Buffer.alloc(4096, 0x2e);
  const fd = openSync(filler, 'w');
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return filler;
}

t.test('a real full disk (2 MB tmpfs): bounded backlog, then recovery', async (t) => {
  const dir = smallDisk(t, '2m');
  const max = 256 * 1024;
  const { log, path } = await open(t, { maxBufferedBytes: max }, join(dir, 'm.log'));
  log.write('{"first":true}\n');
  await log.flush();
  const filler = fill(dir);
  let n = 0;
  let refused = 0;
  let peak = 0;
  for (let round = 0; round < 50; round++) {
    const flushed = log.flush().catch((err: NodeJS.ErrnoException) => {
      t.equal(err.code, 'ENOSPC');
      refused++;
    });
    for (let i = 0; i < 2000; i++) log.write(`{"seq":${n++},"pad":"${'y'.repeat(80)}"}\n`);
    peak = Math.max(peak, log.backlogBytes);
    await flushed;
  }
  t.ok(refused >= 49, `${refused} flushes refused by the full disk`);
  t.ok(peak <= max, `backlog peaked at ${peak} bytes, cap ${max}`);
  // A full disk may never catch up: producers are not held (their lines are kept to the cap,
  // then dropped, so their requests get ERR STORAGE at once instead of no answer).
  t.notOk(log.backlogged, 'producers are not held while the disk refuses writes');
  unlinkSync(filler);
  await log.flush();
  t.equal(log.backlogBytes, 0, 'all written once space is back');
  t.notOk(log.backlogged);
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  const records = lines.map((l) => JSON.parse(l) as { seq?: number; event?: string });
  const seqs = records.flatMap((r) => (r.seq === undefined ? [] : [r.seq]));
  t.same(
    seqs,
    [...seqs].sort((a, b) => a - b),
    'kept lines in order, each whole (all parse)',
  );
  t.equal(new Set(seqs).size, seqs.length, 'none twice');
  t.equal(seqs.length + log.dropped, n, 'every line either kept or counted as dropped');
  t.ok(
    records.some((r) => r.event === 'dropped'),
    'a dropped record',
  );
});

t.test('a drop fails only that line: flush() still resolves for the others', async (t) => {
  const { log, read } = await open(t, { maxBufferedBytes: 1024 });
  const results = Array.from({ length: 40 }, (_, i) => log.write(`${'z'.repeat(40)} ${i}\n`));
  t.ok(results.includes(true) && results.includes(false), 'some kept, some dropped');
  await log.flush();
  t.match(read(), /^\{"event":"dropped","lines":\d+\}\n/m);
});

t.test('backlogged past a quarter of the cap; writing starts at once; onDrain once', async (t) => {
  let drains = 0;
  let drained!: () => void;
  const drainedOnce = new Promise<void>((resolve) => (drained = resolve));
  const max = 16 * 1024;
  const onDrain = () => (drains++, drained());
  const { log, read, clock } = await open(t, { maxBufferedBytes: max, onDrain });
  while (!log.backlogged) t.ok(log.write(`${'b'.repeat(99)}\n`));
  t.ok(log.backlogBytes > max / 4 && log.backlogBytes <= max / 4 + 100);
  t.equal(clock.pending, 1, 'the flush timer has not fired');
  await drainedOnce; // no fake time passes: the write started at the high-water mark
  t.ok(read().length > max / 4, 'written without waiting for the timer');
  t.notOk(log.backlogged);
  t.equal(drains, 1, 'onDrain called once');
  log.write('more\n');
  await log.flush();
  t.equal(drains, 1, 'not again without a new backlog');
});

t.test('reopen: lines before go to the moved file, then a reopened record', async (t) => {
  const { log, path, clock } = await open(t);
  log.write('a\n');
  await log.flush();
  log.write('b\n');
  const inFlight = log.flush(); // a write in flight when logrotate moves the file
  renameSync(path, `${path}.1`);
  log.write('c\n');
  const reopened = log.reopen();
  log.write('d\n');
  const after = log.flush();
  await Promise.all([inFlight, reopened, after]);
  t.equal(readFileSync(`${path}.1`, 'utf8'), 'a\nb\nc\n', 'queued before the call: old file');
  t.equal(
    readFileSync(path, 'utf8'),
    `{"level":30,"time":${clock.now()},"event":"reopened"}\nd\n`,
    'the new file starts with the record, then what came after',
  );
  unlinkSync(path);
  await log.reopen();
  t.ok(existsSync(path), 'a deleted log is created again');
  t.equal(statSync(path).mode & 0o777, 0o600);
});

t.test('reopen that cannot open keeps writing to the old file', async (t) => {
  const { log, path } = await open(t);
  renameSync(path, `${path}.old`);
  symlinkSync('/etc/passwd', path);
  log.write('kept\n');
  await t.rejects(log.reopen(), { code: 'ELOOP' });
  log.write('still\n');
  await log.flush();
  t.equal(readFileSync(`${path}.old`, 'utf8'), 'kept\nstill\n');
});

t.test('rotation at maxBytes: whole records, keep N, 0600, durable renames', async (t) => {
  const { fs, disk } = fullDisk();
  const { log, path } = await open(t, { fs, maxBytes: 100, keep: 2 });
  const all: string[] = [];
  for (let i = 0; i < 30; i++) {
    for (let j = 0; j < 3; j++) {
      all.push(`{"n":${all.length}}`);
      log.write(`${all.at(-1)}\n`);
    }
    await log.flush();
  }
  await log.close();
  t.notOk(existsSync(`${path}.3`), 'nothing beyond keep');
  const files = [`${path}.2`, `${path}.1`, path];
  const texts = files.map((f) => readFileSync(f, 'utf8'));
  for (const [i, f] of files.entries()) {
    t.equal(statSync(f).mode & 0o777, 0o600, `${f} is 0600`);
    t.match(texts[i], /^\{"level":30,"time":\d+,"event":"rotated"\}\n/, 'starts with the record');
    t.ok(Buffer.byteLength(texts[i]!) < 100 + 3 * 12, 'rotated at the first flush past maxBytes');
  }
  const lines = texts
    .join('')
    .split('\n')
    .filter((l) => l !== '' && !l.includes('rotated'));
  t.same(lines, all.slice(all.length - lines.length), 'the newest lines, whole and in order');
  // After each rename the folder is fsynced before the next flush resolves (its datasync).
  const ops = disk.ops.join(',');
  t.match(ops, /rename m\.log m\.log\.1,open,dirsync/);
  t.notMatch(ops, /rename m\.log m\.log\.1,open,(?:(?!dirsync)[^,]+,)*datasync/);
});

t.test('rotation waits for the old file to be durable', async (t) => {
  const { fs, disk } = fullDisk();
  const { log, path } = await open(t, { fs, maxBytes: 10, keep: 1 });
  log.write('0123456789\n');
  disk.broken = true;
  await t.rejects(log.flush(), { code: 'EIO' }, 'written, not durable');
  log.write('x\n');
  await t.rejects(log.flush(), { code: 'EIO' });
  t.notOk(existsSync(`${path}.1`), 'not renamed while its data is not durable');
  disk.broken = false;
  log.write('y\n');
  await log.flush();
  t.equal(readFileSync(`${path}.1`, 'utf8'), '0123456789\n', 'synced, then renamed');
  t.match(readFileSync(path, 'utf8'), /^\{"level":30,"time":\d+,"event":"rotated"\}\nx\ny\n$/);
});

t.test('a symlink at the log path is refused; files 0600, folders 0700', async (t) => {
  const dir = tempDir(t);
  const target = join(dir, 'target');
  writeFileSync(target, 'untouched\n');
  const link = join(dir, 'm.log');
  symlinkSync(target, link);
  const options = { flushMs: 100, maxBufferedBytes: 1024, clock: new FakeClock(), onError() {} };
  await t.rejects(LogFile.open(link, options), { code: 'ELOOP', message: /symbolic link/ });
  t.equal(readFileSync(target, 'utf8'), 'untouched\n');
  const path = join(dir, 'a', 'b', 'm.log');
  const log = await LogFile.open(path, options);
  await log.close();
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.equal(statSync(join(dir, 'a')).mode & 0o777, 0o700);
  t.equal(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o700);
});

t.test('close() rejects when the final flush fails', async (t) => {
  const { fs, disk } = fullDisk();
  const { log } = await open(t, { fs });
  log.write('last words\n');
  disk.full = true;
  await t.rejects(log.close(), { code: 'ENOSPC' });
  t.equal(log.write('late\n'), false, 'nothing is accepted after close');
});

t.test('paused producers, no commits: the retry timer alone recovers the log', async (t) => {
  const { fs, disk } = fullDisk();
  let drains = 0;
  const max = 4096;
  const { log, read, clock, errors } = await open(t, {
    fs,
    maxBufferedBytes: max,
    onDrain: () => drains++,
  });
  disk.full = true;
  const line = `${'p'.repeat(63)}\n`;
  let kept = 0;
  while (!log.backlogged) kept += log.write(line) ? 1 : 0; // then the producer pauses
  const failures = async (n: number) => {
    while (errors.length < n) await new Promise((r) => setImmediate(r));
  };
  await failures(1); // the write started at the high-water mark
  t.equal(drains, 1, 'the failure releases the paused producer: waiting would not help');
  t.notOk(log.backlogged);
  clock.advance(100);
  await failures(2); // the flush timer's write
  t.equal(clock.pending, 1, 'a retry is scheduled though nothing else will write or flush');
  disk.full = false;
  clock.advance(100);
  while (log.backlogBytes > 0) await new Promise((r) => setImmediate(r));
  t.equal(read(), line.repeat(kept), 'every kept line, once');
});
