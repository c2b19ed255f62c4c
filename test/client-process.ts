import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { auditLog } from '../src/client/audit.js';
import { readLog, ROOT, spawnServer, tempDir, type TestLike } from './fixtures/server.js';

// Real processes on a shared 2-core machine: more than tap's 30 s default when it is loaded.
t.setTimeout(90_000);

type Rec = Record<string, unknown>;

/** Runs the real bin/client (JSON lines on its piped stdout); killed in teardown if still up. */
function spawnClient(t: TestLike, args: string[]) {
  // The client reads PARITY_* variables; the caller's must not leak into the test.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('PARITY')),
  );
  const child = spawn(process.execPath, [join(ROOT, 'bin/client'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  });
  const records: Rec[] = [];
  let wake = () => {};
  createInterface({ input: child.stdout }).on('line', (line) => {
    records.push(JSON.parse(line) as Rec);
    wake();
  });
  let ended = false;
  void exited.then(() => ((ended = true), wake()));
  const lines = (event: string, re = /./) =>
    records.filter((r) => r['event'] === event && re.test(String(r['line'])));
  /** Resolves once `n` records of `event` (with a line matching `re`) have been printed. */
  const until = async (n: number, event: string, re?: RegExp) => {
    while (lines(event, re).length < n) {
      if (ended) throw new Error(`client exited; output: ${JSON.stringify(records)}`);
      await new Promise<void>((res) => (wake = res));
    }
  };
  return { child, records, exited, lines, until };
}

// Server-side timestamps: slack for timer lateness and a busy event loop at either end.
const WINDOW = { minMs: 3000, maxMs: 5000, earlyMs: 100, lateMs: 100, graceMs: 200 };

// Both scenarios run at real timings; side by side, the file takes as long as the longer one.
t.jobs = 2;

t.test('8 s against bin/server at real timings; SIGINT and restart resume the value', async (t) => {
  const server = await spawnServer(t);
  const args = ['--id', 'alice', '--port', String(server.port)];
  const alice = spawnClient(t, args);
  await alice.until(16, 'sent', /^VALUE /);
  await alice.until(1, 'increment');
  alice.child.kill('SIGINT');
  t.equal(await alice.exited, 0, 'SIGINT: exit 0');
  const stopped = alice.records.at(-1)!;
  t.match(stopped, { event: 'stopped', code: 0, reason: 'server said BYE' });
  t.ok(alice.lines('sent', /^QUIT$/).length === 1, 'QUIT was sent');

  const again = spawnClient(t, args);
  await again.until(1, 'received', /^VALUE /);
  t.equal(again.lines('received')[0]?.['line'], `VALUE ${stopped['value']}`, 'resumes the value');
  again.child.kill('SIGINT');
  t.equal(await again.exited, 0);

  t.equal(await server.stop('SIGTERM'), 0);
  const audits = auditLog(await readLog(server.logPath), WINDOW);
  t.same(
    audits.map((a) => [a.id, a.problems]),
    [
      ['alice', []],
      ['alice', []],
    ],
    'values follow counter + increment mod 100; switches 3-5 s apart',
  );
  t.ok(audits[0]!.switches >= 1, `${audits[0]!.switches} switches`);
  const gaps = audits[0]!.tickGaps.toSorted((a, b) => a - b);
  const median = gaps[Math.floor(gaps.length / 2)]!;
  t.ok(gaps.length >= 15 && Math.abs(median - 500) <= 50, `median tick gap ${median} ms`);
});

t.test(
  'the server is killed and restarted on the same port: the client says HELLO again',
  async (t) => {
    const dir = tempDir(t);
    const first = await spawnServer(t, { dir });
    const bob = spawnClient(t, ['--id', 'bob', '--port', String(first.port)]);
    await bob.until(3, 'received', /^OK /);
    t.equal(await first.stop('SIGKILL'), 'SIGKILL');
    await bob.until(1, 'disconnected');
    const sent = bob.lines('sent', /^VALUE /).map((r) => String(r['line']));
    const lastOk = String(bob.lines('received', /^OK /).at(-1)?.['line']).replace('OK', 'VALUE');
    const second = await spawnServer(t, { dir, port: first.port });
    await bob.until(2, 'received', /^VALUE /);
    t.equal(bob.lines('sent', /^HELLO bob$/).length, 2, 'HELLO again on the new connection');
    const hello = String(bob.lines('received', /^VALUE /)[1]?.['line']);
    // OK means durable, so the server has at least the last acknowledged value; it may also have a
    // later one that it stored but could not acknowledge before it was killed.
    t.ok(sent.slice(sent.indexOf(lastOk)).includes(hello), `${hello}: last OK was ${lastOk}`);
    await bob.until(sent.length + 2, 'sent', /^VALUE /);
    bob.child.kill('SIGINT');
    t.equal(await bob.exited, 0);
    t.equal(await second.stop('SIGTERM'), 0);
    const audits = auditLog(await readLog(second.logPath), WINDOW);
    t.same(
      audits.map((a) => [a.id, a.problems]),
      [
        ['bob', []],
        ['bob', []],
      ],
      'both connections follow the rules',
    );
    t.equal(
      audits[1]?.last,
      Number(bob.records.at(-1)?.['value']),
      'the server has the last value',
    );
  },
);

t.test('stdout closed by its reader (bin/client | head): QUIT and exit 0', async (t) => {
  const server = await spawnServer(t);
  const carol = spawnClient(t, ['--id', 'carol', '--port', String(server.port)]);
  await carol.until(1, 'received', /^VALUE /);
  carol.child.stdout.destroy(); // what `head` does once it has its lines
  t.equal(await carol.exited, 0, 'the client stops instead of counting on unseen');
  t.equal(await server.stop('SIGTERM'), 0);
  const carolLines = (await readLog(server.logPath)).filter((r) => r['id'] === 'carol');
  t.match(carolLines.at(-1), { event: 'close', reason: 'quit' }, 'it said QUIT and was answered');
});
