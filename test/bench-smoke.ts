import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './fixtures/server.js';

type Row = {
  key: string;
  parity: number | null;
  baseline: number | null;
  detail: Record<string, unknown>;
};
type Step = { clients: number; errors: number; samples: number };

/**
 * Runs a bench script to its exit, its stdout and stderr collected. Teardown sends SIGTERM, not
 * SIGKILL, to one still running: bench/run.mjs then stops every server and generator it started.
 */
async function runBench(
  t: Test,
  script: string,
  args: string[],
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(ROOT, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

/** A bench script's smoke mode, writing into `out`; the run must succeed. */
async function runSmoke(t: Test, script: string, out: string, args: string[] = []): Promise<void> {
  const { code, output } = await runBench(t, script, [
    '--smoke',
    ...args,
    '--out',
    out,
    '--wait-idle',
    '0',
  ]);
  t.equal(code, 0, output);
}

// The benchmark itself is not part of `npm test`; this runs its smallest mode for a few seconds so
// that `npm run bench` cannot rot: every scenario must run end to end and produce its row.
// It starts a dozen servers in turn, so it gets more than tap's default 30 s on a busy machine;
// the cluster bench's smoke mode below adds about 10 s (up to 60 s on a busy one).
t.setTimeout(210_000);
t.test(
  'bench/run.mjs --smoke runs every scenario and writes its report',
  { timeout: 120_000 },
  async (t) => {
    const out = tempDir(t);
    // Sections written by hand (profiles; bench/viewers.mjs's runs): kept on redraw, in order.
    const kept =
      '## Where the time goes\n\nProfiled by hand.\n\n' +
      '## The floor\n\nMeasured beside Redis.\n\n' +
      '## Live view cost\n\nMeasured by hand.\n\n| a | b |\n| --- | --- |\n';
    writeFileSync(join(out, 'BENCHMARKS.md'), `# old\n\n## Flood\n\nold\n\n${kept}`);
    await runSmoke(t, 'bench/run.mjs', out);

    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { rows: Row[] };
    const rows = new Map(results.rows.map((r) => [r.key, r]));
    t.same(
      [...rows.keys()],
      [
        'flood-1x1',
        'flood-10x4',
        'spec-capacity',
        'log-bytes',
        'idle-rss',
        'commit-1000',
        'startup',
        'ids-p50',
        'write-bytes-small',
        'write-bytes-big',
      ],
    );
    // Redis is a peer where redis-server is installed (the bench skips it, saying why, if not).
    const sides = rows.get('flood-1x1')!.detail.redis
      ? ['parity', 'baseline', 'redis']
      : ['parity', 'baseline'];
    for (const key of ['flood-1x1', 'flood-10x4']) {
      const row = rows.get(key)!;
      t.ok(row.parity! > 0 && row.baseline! > 0, `${key}: both servers answered`);
      for (const side of sides) {
        t.same((row.detail[side] as { errors: object }).errors, {}, `${key} ${side}: no errors`);
      }
    }
    for (const side of sides) {
      const steps = rows.get('spec-capacity')!.detail[side] as Step[];
      t.equal(steps.length, 1);
      t.equal(steps[0]!.errors, 0, `spec ${side}: no errors`);
      t.ok(steps[0]!.samples > 0, `spec ${side}: latencies measured`);
    }
    t.ok(rows.get('log-bytes')!.parity! > 0, 'the message log grew');
    t.equal((rows.get('idle-rss')!.detail.parity as { clients: number }).clients, 100);
    t.ok(rows.get('commit-1000')!.parity! > 0);
    t.ok(rows.get('startup')!.parity! > 0);
    t.ok(rows.get('ids-p50')!.parity! > 0, 'p50 with many ids against few');
    t.ok(rows.get('write-bytes-big')!.parity! > 0, 'disk bytes per reply measured');

    const md = readFileSync(join(out, 'BENCHMARKS.md'), 'utf8');
    t.match(md, /\| closed loop 1×1 \|/);
    t.ok(md.endsWith(kept), 'the hand-written sections are kept, at the end');
    t.notMatch(md, /^old$/m, 'the generated sections are redrawn');
    t.match(md, /!\[p99 acknowledgement latency[^\]]*\]\(spec-p99\.svg\)/);
    t.match(readFileSync(join(out, 'spec-p99.svg'), 'utf8'), /^<svg /);
  },
);

t.test('bench/run.mjs --smoke --only floor measures the floor beside Redis', async (t) => {
  const out = tempDir(t);
  await runSmoke(t, 'bench/run.mjs', out, ['--only', 'floor']);
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
    rows: Array<Row & { floor: number; redis: number | null }>;
  };
  t.same(
    results.rows.map((r) => r.key),
    ['floor-flood-1x1', 'floor-flood-10x4', 'floor-spec-capacity'],
  );
  const modes = ['floor-async', 'floor-blocking'];
  for (const row of results.rows.slice(0, 2)) {
    const sides = row.detail.redis ? [...modes, 'redis'] : modes;
    for (const side of sides)
      t.same((row.detail[side] as { errors: object }).errors, {}, `${row.key} ${side}: no errors`);
    const best = Math.max(
      ...modes.map((m) => (row.detail[m] as { repliesPerSec: number }).repliesPerSec),
    );
    t.ok(best > 0 && row.floor === best, `${row.key}: the better mode's figure`);
  }
  const spec = results.rows[2]!.detail as Record<string, { capacity: number; steps: Step[] }>;
  for (const mode of modes) {
    t.equal(spec[mode]!.steps[0]!.errors, 0, `spec ${mode}: no errors`);
    t.equal(spec[mode]!.capacity, 20, `spec ${mode}: its one step passed`);
  }
  t.equal(results.rows[2]!.floor, 20);
});

t.test('bench/run.mjs refuses to publish a run with the floor in it', async (t) => {
  // Every scenario of a report, and the floor: refused for the floor (before the smoke mode).
  const only = 'flood,spec,idle,store,startup,ids,floor';
  const { code, output } = await runBench(t, 'bench/run.mjs', [
    '--smoke',
    '--only',
    only,
    '--publish',
  ]);
  t.equal(code, 2);
  t.match(output, /--publish needs every scenario, not --only, and no --only floor/);
});

t.test(
  'bench/sampler-tick.mjs times the live view tick over the connections it shows',
  async (t) => {
    const { code, output } = await runBench(t, 'bench/sampler-tick.mjs', [
      '--clients',
      '300',
      '--viewers',
      '2',
      '--filtered',
      '1',
      '--ticks',
      '8',
    ]);
    t.equal(code, 0, output);
    const result = JSON.parse(output) as {
      ticksMeasured: number;
      tickMs: { mean: number };
      bytesPerViewerPerTick: number[];
    };
    t.equal(result.ticksMeasured, 6, 'the first quarter warms up');
    t.ok(result.tickMs.mean > 0);
    const [filtered, all] = result.bytesPerViewerPerTick as [number, number];
    t.ok(
      all > 10 * filtered,
      'the unfiltered viewer gets every shown row, the filtered one its id',
    );
  },
);

type ClusterStep = {
  clients: number;
  errors: number;
  samples: number;
  clientsPerServer: Record<string, number> | null;
};

// Debian puts haproxy in /usr/sbin; the cluster bench needs it and redis-server, as CI installs.
const clusterMissing =
  ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy'].some(existsSync) &&
  ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].some(existsSync)
    ? false
    : 'haproxy or redis-server is not installed';

t.test(
  'bench/cluster.mjs --smoke runs through HAProxy and Redis and writes its sections',
  { timeout: 60_000, skip: clusterMissing },
  async (t) => {
    const out = tempDir(t);
    await runSmoke(t, 'bench/cluster.mjs', out);

    const results = JSON.parse(readFileSync(join(out, 'cluster.json'), 'utf8')) as {
      topologies: Array<{ key: string; steps: ClusterStep[] }>;
    };
    t.same(
      results.topologies.map((x) => x.key),
      ['file-direct', 'redis-2'],
    );
    for (const topology of results.topologies) {
      t.equal(topology.steps.length, 1);
      t.equal(topology.steps[0]!.errors, 0, `${topology.key}: no errors`);
      t.ok(topology.steps[0]!.samples > 0, `${topology.key}: latencies measured`);
    }
    // HAProxy spread the clients over both servers, each reading its PROXY header.
    const spread = results.topologies[1]!.steps[0]!.clientsPerServer!;
    t.same(Object.keys(spread), ['parity1', 'parity2']);
    t.equal(
      Object.values(spread).reduce((a, b) => a + b, 0),
      20,
    );

    const md = readFileSync(join(out, 'cluster.md'), 'utf8');
    t.match(md, /^## Cluster\n/);
    t.match(md, /\| Redis, 2 servers, HAProxy \|/);
    t.match(md, /\n## Scaling\n/);
  },
);

t.test('bench/fsync-files.mjs times each variant', async (t) => {
  const dir = tempDir(t);
  const { code, output } = await runBench(t, 'bench/fsync-files.mjs', [
    '--dir',
    dir,
    '--rounds',
    '2',
    '--commits',
    '3',
  ]);
  t.equal(code, 0, output);
  const rows = output.trim().split('\n');
  t.equal(rows.length, 4, output);
  t.match(rows[0], /^log only: append, fdatasync +ms per commit: \d+\.\d{3} \d+\.\d{3}$/);
  t.match(rows[1], /^journal and log at once \(as built\) +ms per commit: \d+\.\d{3} \d+\.\d{3}$/);
  t.match(rows[2], /^journal in place, log appended +ms per commit: \d+\.\d{3} \d+\.\d{3}$/);
  t.match(rows[3], /^both in place +ms per commit: \d+\.\d{3} \d+\.\d{3}$/);
  // Each variant appended its bytes once per commit: 2 rounds × 3 commits.
  t.equal(readFileSync(join(dir, 'log')).length, 3 * 2 * 3 * 4800);
  t.equal(readFileSync(join(dir, 'journal')).length, 2 * 3 * 750);
  // The in-place files never grew past what was written before the run, and were written over.
  const journalInPlace = readFileSync(join(dir, 'journal.in-place'));
  t.equal(journalInPlace.length, 2 * 2 * 3 * 750);
  t.equal(journalInPlace.indexOf(0), -1, 'the two in-place variants wrote the journal end to end');
  const logInPlace = readFileSync(join(dir, 'log.in-place'));
  t.equal(logInPlace.length, 2 * 3 * 4800);
  t.equal(logInPlace.indexOf(0), -1, 'the log was written over end to end');
});

t.test(
  'bench/perf-split.mjs counts each sample once, in the first area its stack matches',
  async (t) => {
    const sample = (...frames: string[]): string =>
      `node  9  100.5:     500250 cpu-clock: \n${frames.map((f) => `\t    ffffffff ${f}`).join('\n')}\n\n`;
    const input = [
      sample(
        'memcpy ([kernel.kallsyms])',
        'net_rx_action ([kernel.kallsyms])',
        'tcp_sendmsg ([kernel.kallsyms])',
        'ksys_write ([kernel.kallsyms])',
      ),
      sample(
        'virtqueue_add ([kernel.kallsyms])',
        'ext4_sync_file ([kernel.kallsyms])',
        '__x64_sys_fdatasync ([kernel.kallsyms])',
      ),
      sample(
        'ext4_da_write_begin ([kernel.kallsyms])',
        'vfs_write ([kernel.kallsyms])',
        'ksys_write ([kernel.kallsyms])',
      ),
      sample('ep_poll ([kernel.kallsyms])', 'do_epoll_wait ([kernel.kallsyms])'),
      sample('futex_wake ([kernel.kallsyms])', '__x64_sys_futex ([kernel.kallsyms])'),
      sample('clear_page_erms ([kernel.kallsyms])', 'exc_page_fault ([kernel.kallsyms])'),
      sample('[unknown] (/tmp/perf-9.map)', 'Builtins_JSEntry (/usr/bin/node)'),
      sample('Builtins_FindOrderedHashMapEntry (/usr/bin/node)', '[unknown] (/tmp/perf-9.map)'),
      sample('__memmove_avx_unaligned (/usr/lib/x86_64-linux-gnu/libc.so.6)'),
      // User space on its way into a futex: not a wake-up until the kernel runs it.
      sample('__futex_abstimed_wait_common (/usr/lib/x86_64-linux-gnu/libc.so.6)'),
    ].join('');
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bench/perf-split.mjs'), '--seconds', '1', '--hz', '4'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.stdin.end(input);
    const [code] = (await once(child, 'exit')) as [number | null];
    t.equal(code, 0, output);
    // 4 samples a second for 1 second are a core: each sample here is 0.25 of one.
    t.same(output.trim().split('\n'), [
      '0.250 cores   10.0%  kernel: TCP sends (on loopback, with the delivery to the peer)',
      '0.250 cores   10.0%  kernel: fdatasync',
      '0.250 cores   10.0%  kernel: other writes (files)',
      '0.250 cores   10.0%  kernel: reads and epoll',
      '0.250 cores   10.0%  kernel: thread wake-ups and switches',
      '0.250 cores   10.0%  kernel: the rest (page faults, timers, memory)',
      '0.250 cores   10.0%  user: JavaScript',
      '0.750 cores   30.0%  user: Node, V8 and libc',
      '2.500 cores  total, 10 samples',
    ]);
  },
);
