/**
 * Issue 4, item 3: a failing disk. Faults are injected at the fs boundary (startServer's storeFs
 * and logFs), because as root a read-only chmod does not stop writes. While the disk fails, VALUE
 * gets ERR STORAGE and never a false OK, other commands keep working, and once the disk recovers
 * writes succeed again without a restart. The same for the message log.
 */
import t, { type Test } from 'tap';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { parseReply } from '../src/protocol/replies.js';
import { readDurable } from '../src/store/recover.js';
import { parseState } from '../src/store/state-file.js';
import {
  parseLogText,
  RawClient,
  rng,
  testSeed,
  waitFor,
  within,
  type Rng,
} from './fixtures/reliability.js';
import { readLog, startTestServer } from './fixtures/server.js';

/** `writeFile` and `sync` (fsync) are the checkpoint's temp file; `write` and `datasync` appends. */
type Op = 'open' | 'write' | 'writeFile' | 'sync' | 'datasync' | 'rename' | 'dirsync';

/** fs wrappers that fail chosen operations on demand, like a disk that is full or broken. */
class FaultyDisk {
  failing = new Set<Op>();
  /** Fail each operation with this probability (seeded), on top of `failing`. */
  chaos: { random: Rng; p: number } | null = null;
  /** The next failing log write first writes half its bytes (a short write), then fails. */
  shortWrite = false;
  code = 'EIO';
  injected = 0;

  check(op: Op): void {
    const chaos = this.chaos !== null && this.chaos.random() < this.chaos.p;
    if (!this.failing.has(op) && !chaos) return;
    this.injected++;
    throw Object.assign(new Error(`${this.code}: injected ${op} failure`), { code: this.code });
  }

  heal(): void {
    this.failing.clear();
    this.chaos = null;
  }

  #wrap(handle: FileHandle, isDir: boolean): FileHandle {
    return new Proxy(handle, {
      get: (target, prop) => {
        const value = Reflect.get(target, prop) as unknown;
        if (typeof value !== 'function') return value;
        const real = (value as (...args: unknown[]) => unknown).bind(target);
        switch (prop) {
          case 'writeFile':
            return async (...args: unknown[]) => (this.check('writeFile'), real(...args));
          case 'write':
            return async (data: Buffer | string, offset?: number) => {
              const bytes = typeof data === 'string' ? Buffer.from(data) : data.subarray(offset);
              if (this.shortWrite && this.failing.has('write') && bytes.length > 1) {
                this.shortWrite = false;
                return target.write(bytes.subarray(0, bytes.length >> 1));
              }
              this.check('write');
              return target.write(bytes);
            };
          case 'sync':
            return async () => (this.check(isDir ? 'dirsync' : 'sync'), real());
          case 'datasync':
            return async () => (this.check('datasync'), real());
          default:
            return real;
        }
      },
    });
  }

  get fs() {
    return {
      open: async (path: string, flags: string | number, mode?: number) => {
        const isDir = flags === 'r' && !path.includes('.journal.');
        if (!isDir) this.check('open');
        return this.#wrap(await fsp.open(path, flags, mode), isDir);
      },
      rename: async (from: string, to: string) => (this.check('rename'), fsp.rename(from, to)),
      unlink: fsp.unlink,
      readdir: fsp.readdir,
      readFile: fsp.readFile,
      mkdir: fsp.mkdir,
    } as unknown as typeof fsp;
  }
}

/** `checkpointBytes` 1: a checkpoint after every commit, so each test's faults hit one. */
async function diskServer(t: Test, checkpointBytes?: number) {
  const store = new FaultyDisk();
  const log = new FaultyDisk();
  const s = await startTestServer(t, {
    storeFs: store.fs,
    logFs: log.fs,
    ...(checkpointBytes ? { storeCheckpoint: { checkpointBytes } } : {}),
  });
  /** What a restart would load now: the checkpoint with the journal replayed over it. */
  const storedValues = () => readDurable(s.statePath);
  const checkpoint = () => parseState(readFileSync(s.statePath, 'utf8'));
  const temps = () => readdirSync(s.dir).filter((n) => n.includes('.tmp-'));
  return { ...s, store, log, storedValues, checkpoint, temps };
}

const isStorageError = (line: string | undefined) => {
  const reply = parseReply(line ?? '');
  return reply?.kind === 'ERR' && reply.code === 'STORAGE';
};

/** PING, EVEN, ODD and HELP, pipelined, each answered as usual. */
async function othersWork(t: Test, client: RawClient, what: string) {
  const replies = await client.request('PING', 'EVEN', 'ODD', 'HELP');
  const kinds = replies.map((line) => parseReply(line));
  t.same(
    kinds.map((r) => r?.kind),
    ['PONG', 'EVEN', 'ODD', 'HELP'],
    `${what}: PING, EVEN, ODD, HELP still answered`,
  );
}

for (const op of ['write', 'datasync'] as const) {
  t.test(`journal: ${op} fails, then the disk recovers`, async (t) => {
    const s = await diskServer(t);
    const alice = await RawClient.connect(s.port, t);
    const bob = await RawClient.connect(s.port, t);
    t.same(await alice.request('HELLO alice', 'VALUE 1'), ['VALUE 0', 'OK 1']);

    s.store.failing.add(op);
    s.store.code = op === 'write' ? 'ENOSPC' : 'EIO';
    const [v2, v3, ...others] = await alice.request('VALUE 2', 'VALUE 3', 'PING', 'EVEN');
    t.ok(isStorageError(v2) && isStorageError(v3), `VALUE gets ERR STORAGE: ${v2}`);
    t.match(v2, s.store.code, 'the reply names the error code');
    t.same(
      others.map((l) => parseReply(l)?.kind),
      ['PONG', 'EVEN'],
      'pipelined ones answered',
    );
    await othersWork(t, bob, 'unidentified connection');
    const [hello] = await bob.request('HELLO bob');
    t.ok(hello === 'VALUE 0' || isStorageError(hello), `HELLO: VALUE 0 or ERR STORAGE (${hello})`);
    t.ok(s.store.injected > 0, `${s.store.injected} faults injected`);
    const stored = (await s.storedValues()).get('alice');
    if (op === 'datasync') t.ok([1, 3].includes(stored!), 'a restart reads 1 or the unsynced 3');
    else t.equal(stored, 1, 'a restart reads the last acknowledged value');

    s.store.heal();
    t.same(await alice.request('VALUE 4'), ['OK 4'], 'after recovery VALUE is OK, no restart');
    t.equal((await s.storedValues()).get('alice'), 4, 'and it is on disk');
    t.same(await bob.request('HELLO bob', 'VALUE 9'), ['VALUE 0', 'OK 9'], 'bob too');
    await othersWork(t, alice, 'after recovery');
  });
}

for (const op of ['open', 'writeFile', 'sync', 'rename', 'dirsync'] as const) {
  t.test(`checkpoint: ${op} fails mid-checkpoint; nothing acknowledged is lost`, async (t) => {
    const s = await diskServer(t, 1);
    const alice = await RawClient.connect(s.port, t);
    t.same(await alice.request('HELLO alice', 'VALUE 1'), ['VALUE 0', 'OK 1']);
    s.store.failing.add(op);
    // Commits only append to the journal: they go on while every checkpoint fails.
    for (let v = 2; v <= 20; v++) {
      t.same(await alice.request(`VALUE ${v}`), [`OK ${v}`], `VALUE ${v} acknowledged`);
      t.equal((await s.storedValues()).get('alice'), v, 'and a restart would read it');
    }
    t.ok(s.store.injected > 0, `${s.store.injected} checkpoint faults injected`);
    t.ok(s.checkpoint(), 'the state file parses');
    // A failed checkpoint removes its temp file before it settles, unseen by the client: wait.
    await waitFor(
      () => s.temps().length === 0,
      () => `temp files left: ${s.temps()}`,
      5_000,
    );
    t.pass('no temp file left behind');

    s.store.heal();
    // The next checkpoint runs at a commit once the retry pause (1 s) is over.
    let last = 20;
    await within(
      5_000,
      'a checkpoint after recovery',
      (async () => {
        while (s.checkpoint().get('alice') !== last) {
          last++;
          t.same(await alice.request(`VALUE ${last}`), [`OK ${last}`]);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })(),
    );
    t.pass(`the state file caught up at VALUE ${last}`);
    // The old generations are unlinked after the rename that the client saw, one at a time.
    const journals = () => readdirSync(s.dir).filter((n) => n.includes('.journal.'));
    await waitFor(
      () => journals().length <= 2,
      () => `generations left: ${journals()}`,
      5_000,
    );
    t.pass('old generations deleted');
  });
}

t.test('a value refused with ERR STORAGE is retried with the next write', async (t) => {
  const s = await diskServer(t);
  const alice = await RawClient.connect(s.port, t);
  const bob = await RawClient.connect(s.port, t);
  t.same(await alice.request('HELLO alice'), ['VALUE 0']);
  t.same(await bob.request('HELLO bob'), ['VALUE 0']);
  s.store.failing.add('datasync');
  t.ok(isStorageError((await alice.request('VALUE 7'))[0]));
  s.store.heal();
  t.same(await bob.request('VALUE 1'), ['OK 1']);
  t.same(
    Object.fromEntries(await s.storedValues()),
    { alice: 7, bob: 1 },
    'protocol.md: kept, retried',
  );
});

for (const mode of ['write', 'short write', 'datasync'] as const) {
  t.test(`message log: ${mode} fails, then the disk recovers`, async (t) => {
    const s = await diskServer(t);
    const alice = await RawClient.connect(s.port, t);
    t.same(await alice.request('HELLO alice', 'VALUE 1'), ['VALUE 0', 'OK 1']);

    s.log.failing.add(mode === 'datasync' ? 'datasync' : 'write');
    s.log.shortWrite = mode === 'short write';
    const [v2, pong] = await alice.request('VALUE 2', 'PING');
    t.ok(isStorageError(v2), `VALUE gets ERR STORAGE when its log line cannot be made durable`);
    t.equal(pong, 'PONG');
    await othersWork(t, alice, 'log failing');
    t.ok(s.log.injected > 0, `${s.log.injected} faults injected`);

    s.log.heal();
    t.same(await alice.request('VALUE 3'), ['OK 3'], 'after recovery VALUE is OK, no restart');
    // Every record parses (no line torn by the failed writes), and the refused request's line
    // was kept and written once the disk came back.
    const records = await readLog(s.logPath);
    const requests = records.filter((r) => r.dir === 'in' && r.id === 'alice').map((r) => r.line);
    t.same(requests, ['VALUE 1', 'VALUE 2', 'PING', 'PING', 'EVEN', 'ODD', 'HELP', 'VALUE 3']);
    t.ok(
      records.some((r) => r.dir === 'out' && isStorageError(String(r.line))),
      'the ERR STORAGE reply is logged too',
    );
  });
}

t.test('random faults on both disks: every OK is on disk and in the log', async (t) => {
  const seed = testSeed();
  t.comment(`seed ${seed}`);
  const s = await diskServer(t, 4096); // checkpoints too, under the same chaos
  s.store.chaos = { random: rng(seed), p: 0.1 };
  s.log.chaos = { random: rng(seed + 1), p: 0.1 };
  const falseOks: string[] = [];
  let refused = 0;
  let oks = 0;
  await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const id = `chaos-${i}`;
      const client = await RawClient.connect(s.port, t);
      while (!(await client.request(`HELLO ${id}`))[0]!.startsWith('VALUE ')) refused++;
      for (let seq = 1; seq <= 40; seq++) {
        const value = (seq * 7 + i) % 100;
        // protocol.md: a client should resend a value that got ERR STORAGE.
        for (;;) {
          const [reply] = await client.request(`VALUE ${value}`);
          if (isStorageError(reply)) {
            refused++;
            continue;
          }
          if (reply !== `OK ${value}`) falseOks.push(`${id}: ${reply} for VALUE ${value}`);
          oks++;
          // Checked the moment OK arrives: the file holds it and the log holds the request.
          const onDisk = (await s.storedValues()).get(id);
          if (onDisk !== value) falseOks.push(`${id}: OK ${value} but the file has ${onDisk}`);
          // Whole lines only: the other clients' writes go on while this reads, and one still in
          // flight can show as a last line cut short (seen once in CI as a false "not in the log").
          const text = readFileSync(s.logPath, 'utf8');
          const { records, bad } = parseLogText(text.slice(0, text.lastIndexOf('\n') + 1));
          const logged = records.some((r) => r.id === id && r.line === `VALUE ${value}`);
          if (!logged) falseOks.push(`${id}: OK ${value} but not in the log`);
          if (bad.length > 0) falseOks.push(`${id}: OK ${value}, and the log has a bad record`);
          break;
        }
      }
    }),
  );
  s.store.heal(); // the clean stop at teardown writes a last checkpoint
  s.log.heal();
  t.same(falseOks, [], 'no false OK');
  t.ok(refused > 10, `faults were hit: ${refused} ERR STORAGE replies, then resent`);
  t.equal(oks, 8 * 40, 'every value acknowledged in the end');
  t.comment(`FIGURES disk: oks=${oks} errStorage=${refused} falseOks=${falseOks.length}`);
  // The disk recovers before the stop: a final write that fails now fails the stop (exit 1),
  // which is its own test (hardening-ops.ts), not this one's.
  s.store.chaos = null;
  s.log.chaos = null;
});
