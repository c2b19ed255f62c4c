/**
 * The scenarios of `npm run bench`. Each one returns one table row (or a few); run.mjs prints the
 * rows and writes them to results.json. Parity and the baseline are measured back to back under
 * the same settings, and every server and generator process is gone when a scenario returns.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { runLoad, startLoad } from './load.mjs';
import { machineTicks, startBaseline, startParity } from './servers.mjs';

const STORE_BENCH = fileURLToPath(new URL('../store-bench.mjs', import.meta.url));
/** Spec clients per generator process: far below the 20,000 open files a process may have. */
const CLIENTS_PER_PROC = 5_000;
/** Parity's --max-clients in the benchmark: the per-process file limit minus some for the rest. */
export const BENCH_MAX_CLIENTS = 19_900;
/** The spec pass criterion, from the issue. */
export const SPEC_P99_LIMIT_MS = 100;

/**
 * @typedef {{
 *   flood: Array<[number, number]>, floodWarmupMs: number, floodMs: number,
 *   specSteps: number[], specWarmupMs: number, specMs: number, bisect: number,
 *   idleClients: number, idleSettleMs: number, storeIds: number[], commits: number,
 *   retryDisturbed: boolean,
 *   startupIds: number, startupRepeats: number,
 * }} Plan
 * @typedef {{ root: string, tmp: string, plan: Plan, profileDir?: string, idleWaitMs: number,
 *   idleBudget: { ms: number },
 *   log: (line: string) => void }} Context
 * @typedef {'parity' | 'baseline'} Target
 */

/** @param {Context} ctx @param {Target} target @param {string} label */
async function launch(ctx, target, label) {
  if (target === 'baseline') return { server: await startBaseline(), dir: null };
  const dir = mkdtempSync(join(ctx.tmp, `${label}-`));
  const nodeArgs = ctx.profileDir
    ? ['--cpu-prof', '--cpu-prof-dir', ctx.profileDir, '--cpu-prof-name', `${label}.cpuprofile`]
    : [];
  const server = await startParity({
    root: ctx.root,
    dir,
    nodeArgs,
    args: ['--max-clients', String(BENCH_MAX_CLIENTS)],
  });
  return { server, dir };
}

/**
 * One server, one load, one measuring window; the server's CPU and the machine's are sampled at
 * the window's edges.
 * @param {Context} ctx
 * @param {Target} target
 * @param {string} label
 * @param {Parameters<typeof runLoad>[0] extends infer C ? Omit<C, 'port'> : never} load
 */
async function measure(ctx, target, label, load) {
  if (ctx.idleWaitMs > 0 && ctx.idleBudget.ms > 0) {
    const t = Date.now();
    await waitForIdle(Math.min(ctx.idleWaitMs, ctx.idleBudget.ms), ctx.log, 300);
    ctx.idleBudget.ms -= Date.now() - t;
  }
  const { server, dir } = await launch(ctx, target, `${target}-${label}`);
  try {
    let cpu0 = 0;
    let cpu1 = 0;
    let m0 = machineTicks();
    let m1 = m0;
    let serverRss = 0;
    const result = await runLoad(
      { ...load, port: server.port, idPrefix: label.replace(/[^A-Za-z0-9]/g, '') },
      {
        atMark() {
          cpu0 = server.cpuSeconds();
          m0 = machineTicks();
        },
        atStop() {
          cpu1 = server.cpuSeconds();
          m1 = machineTicks();
          serverRss = server.rss();
        },
      },
    );
    const exit = await server.stop();
    const logBytes =
      'logPath' in server ? statSync(/** @type {string} */ (server.logPath)).size : 0;
    const serverCpuCores = (cpu1 - cpu0) / (result.windowMs / 1000);
    const machineBusy = (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total);
    return {
      ...result,
      serverCpuCores,
      /** Share of all cores busy during the window (1 = the whole machine). */
      machineBusy,
      /** CPU used by neither the server nor the generator: other work on the machine skews the run. */
      otherCpuCores: Math.max(0, machineBusy * cpus().length - serverCpuCores - result.genCpuCores),
      serverRss,
      serverExit: exit,
      logBytes,
      logBytesPerRequest: logBytes > 0 ? logBytes / Math.max(1, result.answered) : null,
    };
  } finally {
    await server.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** More CPU than this used by neither server nor generator means the run was disturbed. */
const DISTURBED_CORES = 0.3;
const disturbed = (/** @type {{ otherCpuCores: number }} */ r) => r.otherCpuCores > DISTURBED_CORES;

/** @param {Context} ctx @param {number} conns @param {number} inflight */
export async function flood(ctx, conns, inflight) {
  const label = `flood-${conns}x${inflight}`;
  const load = {
    mode: /** @type {const} */ ('flood'),
    conns,
    inflight,
    procs: 1,
    warmupMs: ctx.plan.floodWarmupMs,
    durationMs: ctx.plan.floodMs,
  };
  let baseline = await measure(ctx, 'baseline', label, load);
  let parity = await measure(ctx, 'parity', label, load);
  if (ctx.plan.retryDisturbed && (disturbed(baseline) || disturbed(parity))) {
    ctx.log(`  ${label}: other work took CPU during the run; measuring the pair again`);
    baseline = await measure(ctx, 'baseline', label, load);
    parity = await measure(ctx, 'parity', label, load);
  }
  return {
    key: label,
    scenario: `flood ${conns}×${inflight}`,
    unit: 'replies/s',
    parity: parity.repliesPerSec,
    baseline: baseline.repliesPerSec,
    ratio: parity.repliesPerSec / baseline.repliesPerSec,
    ...(conns === 50 && inflight === 16
      ? { target: '≥ 0.5 × baseline', pass: parity.repliesPerSec >= 0.5 * baseline.repliesPerSec }
      : {}),
    detail: { parity, baseline },
  };
}

/** @param {Context} ctx @param {Target} target @param {number} clients */
async function specStep(ctx, target, clients) {
  const procs = Math.ceil(clients / CLIENTS_PER_PROC);
  const r = await measure(ctx, target, `spec-${clients}`, {
    mode: 'spec',
    conns: clients,
    procs,
    srcAddrs: 2 * procs,
    warmupMs: ctx.plan.specWarmupMs,
    durationMs: ctx.plan.specMs,
  });
  const errors = r.errorCount + r.connect.failed;
  const p99 = r.latencyMs.p99 ?? Infinity;
  return {
    clients,
    pass: errors === 0 && p99 <= SPEC_P99_LIMIT_MS,
    p50: r.latencyMs.p50,
    p99: r.latencyMs.p99,
    p999: r.latencyMs.p999,
    max: r.latencyMs.max,
    errors,
    errorKinds: r.errors,
    repliesPerSec: r.repliesPerSec,
    samples: r.latencyMs.count,
    connectMs: r.connect.ms,
    procs,
    genCpuCores: r.genCpuCores,
    genCpuMaxProc: r.genCpuMaxProc,
    genLagP99Ms: r.genLagP99Ms,
    lateTicks: r.lateTicks,
    serverCpuCores: r.serverCpuCores,
    machineBusy: r.machineBusy,
    otherCpuCores: r.otherCpuCores,
    serverRss: r.serverRss,
    logBytesPerRequest: r.logBytesPerRequest,
  };
}

/**
 * Steps the spec client count up until p99 > 100 ms or an error, then (in --full) bisects between
 * the last pass and the first failure.
 * @param {Context} ctx @param {Target} target
 */
async function specCapacityOf(ctx, target) {
  /** @type {Awaited<ReturnType<typeof specStep>>[]} */
  const steps = [];
  const run = async (/** @type {number} */ n) => {
    let s = await specStep(ctx, target, n);
    if (ctx.plan.retryDisturbed && !s.pass && disturbed(s)) {
      ctx.log(`  spec ${target} ${n}: failed while other work took CPU; measuring it again`);
      s = { ...(await specStep(ctx, target, n)), retried: true };
    }
    steps.push(s);
    ctx.log(
      `  spec ${target.padEnd(8)} ${String(n).padStart(6)} clients: p50 ${fmt(s.p50)} p99 ${fmt(s.p99)} ` +
        `p999 ${fmt(s.p999)} ms, ${s.errors} errors, gen ${s.genCpuCores.toFixed(2)} cores, ` +
        `server ${s.serverCpuCores.toFixed(2)} cores${s.otherCpuCores > 0.2 ? `, OTHER LOAD ${s.otherCpuCores.toFixed(2)} cores` : ''} ` +
        `${s.pass ? 'pass' : 'FAIL'}`,
    );
    return s.pass;
  };
  let lo = 0;
  let hi = 0;
  for (const n of ctx.plan.specSteps) {
    if (await run(n)) lo = n;
    else {
      hi = n;
      break;
    }
  }
  for (let i = 0; i < ctx.plan.bisect && hi > 0; i++) {
    const mid = Math.round((lo + hi) / 2 / 250) * 250;
    if (mid <= lo || mid >= hi) break;
    if (await run(mid)) lo = mid;
    else hi = mid;
  }
  steps.sort((a, b) => a.clients - b.clients);
  return { capacity: lo, limited: hi === 0, steps };
}

/** @param {Context} ctx */
export async function specCapacity(ctx) {
  const baseline = await specCapacityOf(ctx, 'baseline');
  const parity = await specCapacityOf(ctx, 'parity');
  return {
    key: 'spec-capacity',
    scenario: `spec clients at p99 ≤ ${SPEC_P99_LIMIT_MS} ms, 0 errors`,
    unit: 'clients',
    parity: parity.capacity,
    baseline: baseline.capacity,
    ratio: baseline.capacity > 0 ? parity.capacity / baseline.capacity : null,
    target: '≥ 18,000',
    pass: parity.capacity >= 18_000,
    note:
      [parity, baseline].some((x) => x.limited) && ctx.plan.specSteps.length > 0
        ? `the step list ends at ${Math.max(...ctx.plan.specSteps)}: a server that passed every step may hold more`
        : undefined,
    detail: { parity: parity.steps, baseline: baseline.steps },
  };
}

/** @param {Context} ctx */
export async function idleRss(ctx) {
  const n = ctx.plan.idleClients;
  /** @type {Record<Target, any>} */
  const out = { parity: null, baseline: null };
  for (const target of /** @type {Target[]} */ (['baseline', 'parity'])) {
    const { server, dir } = await launch(ctx, target, `${target}-idle`);
    const procs = Math.ceil(n / CLIENTS_PER_PROC);
    const load = startLoad({
      mode: 'idle',
      port: server.port,
      conns: n,
      procs,
      srcAddrs: 2 * procs,
    });
    try {
      await sleep(ctx.plan.idleSettleMs / 4);
      const before = server.rss();
      const connected = await load.connected;
      await sleep(ctx.plan.idleSettleMs); // let the accept burst's garbage go, as it would in service
      const after = server.rss();
      out[target] = {
        clients: connected.ok,
        failed: connected.failed,
        rssBefore: before,
        rssAfter: after,
        bytesPerClient: (after - before) / Math.max(1, connected.ok),
      };
    } finally {
      await load.exit();
      await server.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }
  return {
    key: 'idle-rss',
    scenario: `RSS per idle client at ${n.toLocaleString('en-US')}`,
    unit: 'bytes',
    parity: out.parity.bytesPerClient,
    baseline: out.baseline.bytesPerClient,
    ratio:
      out.baseline.bytesPerClient > 0
        ? out.parity.bytesPerClient / out.baseline.bytesPerClient
        : null,
    target: '≤ 10 KiB',
    pass: out.parity.bytesPerClient <= 10 * 1024 && out.parity.failed === 0,
    detail: out,
  };
}

const execFileP = promisify(execFile);

/** @param {Context} ctx @param {string[]} args */
async function storeBench(ctx, args) {
  const { stdout } = await execFileP(process.execPath, [STORE_BENCH, ...args, '--root', ctx.root], {
    timeout: 300_000,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout);
}

/** @param {Context} ctx */
export async function storeCommit(ctx) {
  const dir = mkdtempSync(join(ctx.tmp, 'store-'));
  try {
    const ids = ctx.plan.storeIds.join(',');
    /** @type {Array<{ ids: number, bytes: number, serializeMs: number, openMs: number, commitMs: { median: number, min: number, max: number } }>} */
    const results = await storeBench(ctx, [
      'commit',
      '--dir',
      dir,
      '--ids',
      ids,
      '--commits',
      String(ctx.plan.commits),
    ]);
    return results.map((r) => ({
      key: `commit-${r.ids}`,
      scenario: `state commit, ${r.ids.toLocaleString('en-US')} ids`,
      unit: 'ms',
      parity: r.commitMs.median,
      baseline: null,
      ratio: null,
      ...(r.ids === 100_000 ? { target: '≤ 50 ms', pass: r.commitMs.median <= 50 } : {}),
      detail: r,
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** @param {Context} ctx */
export async function startup(ctx) {
  const ids = ctx.plan.startupIds;
  const dir = mkdtempSync(join(ctx.tmp, 'startup-'));
  try {
    const statePath = join(dir, 'big.json');
    const file = await storeBench(ctx, ['write', '--path', statePath, '--ids', String(ids)]);
    const times = [];
    for (let i = 0; i < ctx.plan.startupRepeats; i++) {
      const server = await startParity({ root: ctx.root, dir, statePath });
      times.push(server.readyMs);
      await server.stop();
    }
    const empty = await startParity({ root: ctx.root, dir: mkdtempSync(join(dir, 'empty-')) });
    await empty.stop();
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    return {
      key: 'startup',
      scenario: `startup, ${ids.toLocaleString('en-US')} ids in the state file`,
      unit: 'ms',
      parity: median,
      baseline: null,
      ratio: null,
      target: ids >= 1_000_000 ? '≤ 2,000 ms' : undefined,
      pass: ids >= 1_000_000 ? median <= 2_000 : undefined,
      detail: { ids, fileBytes: file.bytes, runsMs: times, emptyStateMs: empty.readyMs },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Log bytes per request, from runs already made: flood 50×16 (VALUE only) and the largest
 * passing spec step (the real mix of HELLO, VALUE, EVEN and ODD, with open and close records).
 * @param {any[]} rows
 */
export function logBytes(rows) {
  const floodRow =
    rows.find((r) => r.key === 'flood-50x16') ?? rows.find((r) => r.key?.startsWith('flood-'));
  const specRow = rows.find((r) => r.key === 'spec-capacity');
  /** @type {any[]} */
  const steps = specRow?.detail.parity ?? [];
  const spec = steps.filter((s) => s.pass).at(-1) ?? steps[0];
  return {
    key: 'log-bytes',
    scenario: 'message log bytes per request',
    unit: 'bytes',
    parity: spec?.logBytesPerRequest ?? floodRow?.detail.parity.logBytesPerRequest ?? null,
    baseline: null,
    ratio: null,
    detail: {
      flood: floodRow
        ? {
            scenario: floodRow.scenario,
            bytesPerRequest: floodRow.detail.parity.logBytesPerRequest,
          }
        : null,
      spec: spec ? { clients: spec.clients, bytesPerRequest: spec.logBytesPerRequest } : null,
    },
  };
}

export const fmt = (/** @type {number | null | undefined} */ x) =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1);

/**
 * Waits (up to `maxMs`) until the machine has been nearly idle for a second, so that other work
 * (a test run, a build) does not take cores from the run. Returns the busy share last seen.
 */
export async function waitForIdle(
  /** @type {number} */ maxMs,
  /** @type {(line: string) => void} */ log,
  sampleMs = 1_000,
) {
  const until = Date.now() + maxMs;
  let warned = false;
  for (;;) {
    const a = machineTicks();
    await sleep(sampleMs);
    const b = machineTicks();
    const busy = (b.busy - a.busy) / Math.max(1, b.total - a.total);
    if (busy < IDLE_BUSY || Date.now() >= until) return busy;
    if (!warned)
      log(
        `machine ${(busy * 100).toFixed(0)}% busy with other work; waiting up to ${maxMs / 1000} s for it to go idle`,
      );
    warned = true;
  }
}
/** Below this share of all cores busy, the machine counts as idle. */
const IDLE_BUSY = 0.1;
