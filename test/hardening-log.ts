/**
 * Issue 11, hardening of the message log: each test reproduces a fault that was observed.
 */
import t from 'tap';
import { promises as fsp, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { LogFile, type LogFileOptions } from '../src/log/log-file.js';
import { FakeClock } from './fixtures/fake-clock.js';
import { tempDir } from './fixtures/server.js';

/** A disk whose writes fail with ENOSPC (a turn of the event loop later) while `full` is set. */
function fullDisk() {
  const disk = { full: false, attempts: 0 };
  const fs = {
    ...fsp,
    open: (async (...args: Parameters<typeof fsp.open>) => {
      const real = await fsp.open(...args);
      return new Proxy(real, {
        get(target, prop) {
          if (prop === 'write') {
            return async (data: Buffer | string, offset?: number) => {
              await new Promise((r) => setImmediate(r));
              if (disk.full) {
                disk.attempts++;
                throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
              }
              return typeof data === 'string' ? target.write(data) : target.write(data, offset);
            };
          }
          const value = Reflect.get(target, prop) as unknown;
          return typeof value === 'function'
            ? (value as (...a: unknown[]) => unknown).bind(target)
            : value;
        },
      }) as FileHandle;
    }) as typeof fsp.open,
  };
  return { fs, disk };
}

async function open(t: { teardown(fn: () => unknown): void }, opts: Partial<LogFileOptions> = {}) {
  const path = join(tempDir(t), 'm.log');
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
  t.ok(text.length <= max + 100, `at most the cap reaches the file once space returns: ${text.length}`);
  const seqs = kept.map((l) => Number(l.slice(0, 8)));
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'in order');
  t.equal(new Set(seqs).size, seqs.length, 'none twice');
  t.match(text, /\{"event":"dropped","lines":\d+\}\n/, 'the drops are recorded');
});
