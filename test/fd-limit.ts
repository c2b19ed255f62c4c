import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import {
  describeFdPlan,
  fitClientsToFdLimit,
  parseNofile,
  runPrlimit,
  type FdDeps,
} from '../src/cli/fd-limit.js';
import { FD_HEADROOM } from '../src/limits.js';
import { LineClient, SERVER_BIN, tempDir, type TestLike } from './fixtures/server.js';

// The process tests hold about a thousand connections on a loaded 2-core machine.
t.setTimeout(120_000);

const limits = (soft: number | string, hard: number | string) =>
  `Limit                     Soft Limit           Hard Limit           Units     \n` +
  `Max cpu time              unlimited            unlimited            seconds   \n` +
  `Max open files            ${soft}                 ${hard}                 files     \n`;

/** A process whose limits live in memory; setSoft behaves as prlimit would. */
function fakeFds(soft: number, hard: number, open = 20, failWith?: string) {
  const calls: number[] = [];
  const deps: FdDeps = {
    readLimits: () => limits(soft, hard),
    setSoft(n) {
      calls.push(n);
      if (failWith !== undefined) throw new Error(failWith);
      soft = n;
    },
    openNow: () => open,
  };
  return { deps, calls };
}

t.test('parseNofile reads the soft and hard limit, unlimited as Infinity', async (t) => {
  t.same(parseNofile(limits(1024, 4096)), { soft: 1024, hard: 4096 });
  t.same(parseNofile(limits(1024, 'unlimited')), { soft: 1024, hard: Infinity });
  t.equal(parseNofile('Max cpu time  unlimited unlimited seconds\n'), null);
});

t.test('a limit that fits is left alone', async (t) => {
  const { deps, calls } = fakeFds(20_000, 20_000);
  const plan = fitClientsToFdLimit(10_000, deps);
  t.equal(plan.maxClients, 10_000);
  t.equal(plan.reserved, FD_HEADROOM + 20);
  t.same(calls, []);
  t.same(describeFdPlan(plan), []);
});

t.test('a soft limit below the need is raised toward it, up to the hard limit', async (t) => {
  const { deps, calls } = fakeFds(1024, 65_536);
  const plan = fitClientsToFdLimit(10_000, deps);
  t.same(calls, [10_000 + FD_HEADROOM + 20], 'just what is needed, not the whole hard limit');
  t.equal(plan.maxClients, 10_000);
  t.match(describeFdPlan(plan), [
    { level: 'info', msg: `raised the open-file limit from 1024 to ${10_052}` },
  ]);
});

t.test('a hard limit below the need: raise to it, then serve fewer clients', async (t) => {
  const { deps, calls } = fakeFds(1024, 2048);
  const plan = fitClientsToFdLimit(10_000, deps);
  t.same(calls, [2048]);
  t.equal(plan.maxClients, 2048 - FD_HEADROOM - 20);
  const lines = describeFdPlan(plan);
  t.equal(lines.length, 2);
  t.equal(lines[1]!.level, 'warn');
  t.equal(
    lines[1]!.msg,
    `the open-file limit is 2048 (hard 2048): serving at most ${plan.maxClients} clients ` +
      `instead of --max-clients 10000, 52 descriptors kept for the server; to serve them all, ` +
      `raise it to 10052 (ulimit -n 10052, or LimitNOFILE=10052 in a systemd unit) or lower ` +
      `--max-clients`,
  );
});

t.test('soft = hard (ulimit -n 1024): nothing to raise, fewer clients', async (t) => {
  const { deps, calls } = fakeFds(1024, 1024);
  const plan = fitClientsToFdLimit(10_000, deps);
  t.same(calls, []);
  t.equal(plan.maxClients, 1024 - FD_HEADROOM - 20);
});

t.test('prlimit missing or refused: said so, and fewer clients', async (t) => {
  const { deps } = fakeFds(1024, 65_536, 20, 'prlimit (util-linux) is not installed');
  const plan = fitClientsToFdLimit(10_000, deps);
  t.equal(plan.maxClients, 1024 - FD_HEADROOM - 20);
  t.match(describeFdPlan(plan), [
    {
      level: 'warn',
      msg: 'could not raise the open-file limit: prlimit (util-linux) is not installed',
    },
    { level: 'warn', msg: /^the open-file limit is 1024 \(hard 65536\)/ },
  ]);
});

t.test('no /proc (not Linux): max-clients as given', async (t) => {
  const plan = fitClientsToFdLimit(10_000, {
    readLimits: () => null,
    setSoft: () => t.fail('nothing to base a raise on'),
    openNow: () => 0,
  });
  t.equal(plan.maxClients, 10_000);
  t.same(describeFdPlan(plan), []);
});

const noPrlimit =
  spawnSync('sh', ['-c', 'command -v prlimit']).status === 0 ? false : 'prlimit is not installed';

const softOf = (pid: number) => parseNofile(readFileSync(`/proc/${pid}/limits`, 'utf8'))!.soft;

t.test('runPrlimit sets the soft limit of a running process', { skip: noPrlimit }, async (t) => {
  const child = spawn('prlimit', ['--nofile=100:4096', 'sleep', '60'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  await once(child, 'spawn');
  // prlimit execs sleep, so the pid is the same; wait until the limit is applied.
  while (softOf(child.pid!) !== 100) await new Promise((r) => setImmediate(r));
  runPrlimit(child.pid!, 3000);
  t.same(parseNofile(readFileSync(`/proc/${child.pid}/limits`, 'utf8')), {
    soft: 3000,
    hard: 4096,
  });
  t.throws(() => runPrlimit(child.pid!, 5000), /prlimit: /, 'past the hard limit');
});

type Record_ = Record<string, unknown>;

/** bin/server under `prlimit --nofile=<nofile>`, its stdout parsed; killed in teardown. */
async function serverUnder(t: TestLike, nofile: string, args: string[]) {
  const dir = tempDir(t);
  const child = spawn(
    'prlimit',
    [
      `--nofile=${nofile}`,
      process.execPath,
      SERVER_BIN,
      '--port',
      '0',
      '--data-dir',
      dir,
      // The per-address cap would refuse first: every test connection comes from 127.0.0.1.
      '--max-clients-per-address',
      '100000',
      // No HTTP side: it takes a descriptor of its own, and a taken port 7071 would warn.
      '--no-http',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit');
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  });
  const output: Record_[] = [];
  let ready!: (r: Record_) => void;
  const listening = new Promise<Record_>((r) => (ready = r));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const record = JSON.parse(line) as Record_;
    output.push(record);
    if (String(record.msg).startsWith('listening')) ready(record);
  });
  const record = await Promise.race([
    listening,
    exited.then(() => Promise.reject(new Error('the server exited before listening'))),
  ]);
  return { child, output, port: Number(record.port), maxClients: Number(record.maxClients), dir };
}

t.test(
  'ulimit -n 1024, --max-clients 10000: clients past the fit get BYE SERVER_BUSY, never EMFILE',
  { skip: noPrlimit },
  async (t) => {
    const s = await serverUnder(t, '1024:1024', []);
    const warn = s.output.find((r) => String(r.msg).startsWith('the open-file limit is 1024'));
    t.ok(warn, 'the console log says why and how to raise it');
    t.match(warn, { level: 40, soft: 1024, hard: 1024, wanted: 10_000, maxClients: s.maxClients });
    t.ok(s.maxClients < 1024 - FD_HEADROOM && s.maxClients > 900, `fits: ${s.maxClients}`);
    // Fill every slot; each one is served (a HELLO commits a new id: the state write needs
    // descriptors of its own).
    const served: LineClient[] = [];
    for (let i = 0; i < s.maxClients; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, s.maxClients - i) }, () =>
          LineClient.connect(t, s.port),
        ),
      );
      const replies = await Promise.all(batch.map((c, j) => c.request(`HELLO c${i + j}`)));
      for (const r of replies) if (r[0] !== 'VALUE 0') t.fail(`HELLO got ${r[0]}`);
      served.push(...batch);
    }
    t.equal(served.length, s.maxClients);
    // 50 more, one at a time as a real client would retry: each is told, none is reset.
    const refused: string[] = [];
    for (let i = 0; i < 50; i++) {
      const c = await LineClient.connect(t, s.port);
      refused.push(...(await c.readToEnd()));
      c.socket.destroy();
    }
    t.equal(refused.length, 50, 'one line each');
    t.ok(
      refused.every((l) => l.startsWith('BYE SERVER_BUSY')),
      `every extra got BYE SERVER_BUSY (${refused.find((l) => !l.startsWith('BYE'))})`,
    );
    t.same(await served[0]!.request('VALUE 5'), ['OK 5'], 'a connected client is still served');
    t.same(await served.at(-1)!.request('VALUE 7'), ['OK 7']);
    t.notOk(
      s.output.some((r) => JSON.stringify(r).includes('EMFILE')),
      'the server never ran out of descriptors',
    );
  },
);

t.test(
  'a hard limit above the need: the soft limit is raised and max-clients kept',
  { skip: noPrlimit },
  async (t) => {
    const s = await serverUnder(t, '1024:4096', ['--max-clients', '2000']);
    t.equal(s.maxClients, 2000);
    t.ok(softOf(s.child.pid!) >= 2000 + FD_HEADROOM, `soft limit now ${softOf(s.child.pid!)}`);
    t.notOk(
      s.output.some((r) => r.level === 40),
      'no warning',
    );
    const c = await LineClient.connect(t, s.port);
    t.same(await c.request('HELLO a', 'VALUE 1'), ['VALUE 0', 'OK 1']);
  },
);

t.test(
  'a burst of refusals at the cap does not spend the descriptors the served clients need',
  { skip: noPrlimit },
  async (t) => {
    const s = await serverUnder(t, '256:256', []);
    const served = await Promise.all(
      Array.from({ length: s.maxClients }, () => LineClient.connect(t, s.port)),
    );
    await Promise.all(served.map((c, i) => c.request(`HELLO b${i}`)));
    // 300 at once, each with a request the server will not read: a refused socket lingers to
    // read it (closing on unread input sends RST), and each lingering one holds a descriptor.
    const burst = await Promise.all(
      Array.from({ length: 300 }, async () => {
        const c = await LineClient.connect(t, s.port).catch(() => null);
        c?.send('PING\n');
        return c;
      }),
    );
    const [reply] = await served[0]!.request('VALUE 5');
    t.equal(reply, 'OK 5', 'a served client still commits (not ERR STORAGE for EMFILE)');
    const answers = await Promise.all(burst.map((c) => c?.readToEnd() ?? Promise.resolve([])));
    t.ok(
      answers.every((lines) => lines.every((l) => l.startsWith('BYE SERVER_BUSY'))),
      'a refused peer gets BYE SERVER_BUSY or a close, nothing else',
    );
    t.notOk(
      s.output.some((r) => JSON.stringify(r).includes('EMFILE')),
      'the server never ran out of descriptors',
    );
  },
);
