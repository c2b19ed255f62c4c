import t from 'tap';
import { promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { LogFile } from '../src/log/log-file.js';
import { FakeClock } from './fixtures/fake-clock.js';
import { overrideHandle } from './fixtures/failing-fs.js';
import { tempDir } from './fixtures/server.js';

/** The log's fs, with each file it opens wrapped (a disk that fails in some way). */
function logFs(wrap: (real: FileHandle) => FileHandle | Promise<FileHandle>) {
  return {
    mkdir: fsp.mkdir,
    rename: fsp.rename,
    unlink: fsp.unlink,
    open: (async (path: string, flags: string, mode?: number) =>
      wrap(await fsp.open(path, flags, mode))) as typeof fsp.open,
  };
}

/** A disk that can be told to fail: the next write stores only `partial` bytes, then ENOSPC. */
function faultyFs() {
  const state = { failing: false, partial: 0 };
  const fs = logFs((real) =>
    overrideHandle(real, {
      write: (async (data: Buffer | string, offset?: number) => {
        if (state.failing) {
          const buf = typeof data === 'string' ? Buffer.from(data) : data.subarray(offset ?? 0);
          if (state.partial > 0) {
            const n = Math.min(state.partial, buf.length);
            state.partial = 0;
            return real.write(buf, 0, n);
          }
          throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
        }
        return typeof data === 'string' ? real.write(data) : real.write(data, offset);
      }) as FileHandle['write'],
    }),
  );
  return { fs, state };
}

async function open(
  t: { teardown(fn: () => unknown): void },
  opts: { maxBufferedBytes?: number; fs?: ReturnType<typeof faultyFs>['fs'] } = {},
) {
  const path = join(tempDir(t), 'sub', 'm.log');
  const clock = new FakeClock();
  const errors: unknown[] = [];
  const log = await LogFile.open(path, {
    flushMs: 100,
    maxBufferedBytes: opts.maxBufferedBytes ?? 1 << 20,
    clock,
    onError: (e) => errors.push(e),
    ...(opts.fs ? { fs: opts.fs } : {}),
  });
  t.teardown(() => log.close().catch(() => {}));
  return { log, path, clock, errors, read: () => readFileSync(path, 'utf8') };
}

t.test('flush writes queued lines in order and resolves once they are on disk', async (t) => {
  const { log, read } = await open(t);
  log.write('a\n');
  log.write('b\n');
  t.equal(read(), '', 'nothing written before a flush');
  await log.flush();
  t.equal(read(), 'a\nb\n');
});

t.test('lines are written on the timer when nothing else flushes', async (t) => {
  const { log, read, clock } = await open(t);
  log.write('tick\n');
  clock.advance(99);
  await new Promise((r) => setImmediate(r));
  t.equal(read(), '');
  clock.advance(1);
  await log.flush(); // waits behind the timer's flush
  t.equal(read(), 'tick\n');
});

t.test('lines larger than the buffer, and many of them, arrive whole', async (t) => {
  const { log, read } = await open(t);
  const big = 'x'.repeat(200_000) + '\n';
  log.write(big);
  for (let i = 0; i < 5000; i++) log.write(`line ${i} é\n`);
  await log.flush();
  const text = read();
  t.ok(text.startsWith(big));
  t.equal(text.split('\n').length, 5002);
  t.ok(text.endsWith('line 4999 é\n'));
});

t.test('a failed write keeps the unwritten bytes, in order, for the next flush', async (t) => {
  const { fs, state } = faultyFs();
  const { log, read } = await open(t, { fs });
  log.write('one\n');
  log.write('two\n');
  state.failing = true;
  state.partial = 5; // "one\nt" reaches the file, then the disk is full
  await t.rejects(log.flush(), { code: 'ENOSPC' });
  log.write('three\n');
  await t.rejects(log.flush(), { code: 'ENOSPC' });
  state.failing = false;
  await log.flush();
  t.equal(read(), 'one\ntwo\nthree\n', 'every byte exactly once, in order');
});

t.test('past the buffer cap lines are dropped and counted; flushes still succeed', async (t) => {
  const { fs, state } = faultyFs();
  const { log, read } = await open(t, { fs, maxBufferedBytes: 64 });
  state.failing = true;
  t.equal(log.write('VALUE 1\n'), true);
  await t.rejects(log.flush());
  const kept = Array.from({ length: 20 }, (_, i) => log.write(`VALUE ${i}\n`));
  t.ok(kept.includes(false), 'write() says which lines were dropped');
  t.ok(log.backlogBytes <= 64, `never past the cap: ${log.backlogBytes}`);
  state.failing = false;
  await log.flush(); // a drop fails only the dropped line's request, not every waiting commit
  t.match(read(), /\{"event":"dropped","lines":\d+\}\n/);
  t.equal(log.dropped, kept.filter((k) => !k).length);
  log.write('after\n');
  await log.flush();
  t.ok(read().endsWith('after\n'), 'then it works normally');
});

t.test('a half record left by a crash is closed off before new lines are appended', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'm.log');
  writeFileSync(path, '{"line":"complete"}\n{"line":"cut sh');
  const log = await LogFile.open(path, {
    flushMs: 100,
    maxBufferedBytes: 1 << 20,
    clock: new FakeClock(),
    onError: () => {},
  });
  log.write('{"line":"next"}\n');
  await log.close();
  t.equal(readFileSync(path, 'utf8'), '{"line":"complete"}\n{"line":"cut sh\n{"line":"next"}\n');
  const again = await LogFile.open(path, {
    flushMs: 100,
    maxBufferedBytes: 1 << 20,
    clock: new FakeClock(),
    onError: () => {},
  });
  await again.close();
  t.equal(readFileSync(path, 'utf8').split('\n').length, 4, 'a whole file gets no extra line');
});

/**
 * A disk whose writeback fails once, as Linux reports it: that fdatasync fails with EIO, the
 * bytes written since the last good one never reach the disk (simulated: the file is cut back to
 * that size, as a read after the page cache dropped them would show), and the next fdatasync
 * succeeds, since the failed pages were marked clean.
 */
function writebackFs() {
  const state = { failNextSync: false, failEverySync: false };
  const fs = logFs(async (real) => {
    let synced = (await real.stat()).size;
    return overrideHandle(real, {
      datasync: async () => {
        if (state.failNextSync || state.failEverySync) {
          state.failNextSync = false;
          await real.truncate(synced);
          throw Object.assign(new Error('i/o error'), { code: 'EIO' });
        }
        await real.datasync();
        synced = (await real.stat()).size;
      },
    });
  });
  return { fs, state };
}

t.test(
  'after a failed fdatasync the lines since the last good one are written again',
  async (t) => {
    const { fs, state } = writebackFs();
    const { log, read, clock, errors } = await open(t, { fs });
    log.write('one\n');
    await log.flush();
    log.write('two\n');
    log.write('three\n');
    state.failNextSync = true;
    await t.rejects(log.flush(), { code: 'EIO' }, 'the waiting requests are not acknowledged');
    log.write('four\n');
    await log.flush(); // resolves only once all it promises is on disk
    t.equal(read(), 'one\ntwo\nthree\nfour\n', 'every line exactly once, in order');

    // The same when the failed sync was the timer's, which nobody waited on.
    log.write('five\n');
    state.failNextSync = true;
    clock.advance(100);
    while (errors.length === 0) await new Promise((r) => setImmediate(r));
    t.match(errors, [{ code: 'EIO' }]);
    log.write('six\n');
    await log.flush();
    t.equal(read(), 'one\ntwo\nthree\nfour\nfive\nsix\n');
  },
);

t.test(
  'a disk that takes writes but fails every fdatasync: the lines kept are bounded',
  async (t) => {
    const { fs, state } = writebackFs();
    const { log, read } = await open(t, { fs, maxBufferedBytes: 4096 });
    state.failEverySync = true;
    const line = `${'x'.repeat(99)}\n`;
    let taken = 0;
    for (let i = 0; i < 200 && log.write(line); i++) {
      taken++;
      await t.rejects(log.flush(), { code: 'EIO' });
    }
    t.ok(taken <= 41, `${taken} lines taken, then the cap of 4 KiB held for the sync was reached`);
    state.failEverySync = false;
    await log.flush();
    const dropped = '{"event":"dropped","lines":1}\n'; // the line refused at the cap, counted
    t.equal(read(), line.repeat(taken) + dropped, 'every line taken is written once it syncs');
    t.ok(log.write(line), 'the cap is free again');
  },
);
