/**
 * The scenarios of `npm run bench`. Each one returns one table row (or a few); run.mjs prints the
 * rows and writes them to results.json. Parity and the baseline are measured back to back under
 * the same settings, and every server and generator process is gone when a scenario returns.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { runLoad, startLoad } from './load.mjs';
import {
  machineTicks,
  redisServerPath,
  startBaseline,
  startFloor,
  startParity,
  startRedis,
  writeBytes,
} from './servers.mjs';

const STORE_BENCH = fileURLToPath(new URL('../store-bench.mjs', import.meta.url));
/** Spec clients per generator process: far below the 20,000 open files a process may have. */
export const CLIENTS_PER_PROC = 5_000;
/** Parity's --max-clients in the benchmark: the per-process file limit minus some for the rest. */
export const BENCH_MAX_CLIENTS = 19_900;
/** Parity's --max-ids in the benchmark: room for every state the scenarios start from, and more. */
const BENCH_MAX_IDS = 20_000_000;
/** The spec pass criterion, from the issue. */
export const SPEC_P99_LIMIT_MS = 100;

/**
 * @typedef {{
 *   flood: Array<[number, number]>, floodWarmupMs: number, floodMs: number,
 *   specSteps: number[], specWarmupMs: number, specMs: number, bisect: number,
 *   idleClients: number, idleSettleMs: number, storeIds: number[], commits: number,
 *   retryDisturbed: boolean,
 *   startupIds: number, startupRepeats: number, startupBigIds: number, bytesClients: number,
 *   idsBig: number,
 * }} Plan
 * @typedef {{ root: string, tmp: string, plan: Plan, profileDir?: string, idleWaitMs: number,
 *   idleBudget: { ms: number },
 *   log: (line: string) => void }} Context
 * @typedef {'parity' | 'baseline' | 'redis' | FloorMode} Target
 * @typedef {'floor-async' | 'floor-blocking'} FloorMode
 */

/** Why the Redis rows are missing, or null when redis-server is installed. */
export const redisMissing = () =>
  redisServerPath() === null
    ? 'redis-server is not installed (apt-get install redis-server); Redis rows skipped'
    : null;

/**
 * @param {Context} ctx @param {Target} target @param {string} label
 * @param {string} [statePath] a state file to start Parity from (copied: the run changes it)
 */
async function launch(ctx, target, label, statePath) {
  if (target === 'baseline') return { server: await startBaseline(), dir: null };
  const dir = mkdtempSync(join(ctx.tmp, `${label}-`));
  if (target === 'redis')
    return { server: await startRedis({ dir, maxClients: BENCH_MAX_CLIENTS }), dir };
  if (target === 'floor-async' || target === 'floor-blocking')
    return {
      server: await startFloor({ dir, commit: target === 'floor-async' ? 'async' : 'blocking' }),
      dir,
    };
  if (statePath) copyFileSync(statePath, join(dir, 'state.json'));
  const nodeArgs = ctx.profileDir
    ? ['--cpu-prof', '--cpu-prof-dir', ctx.profileDir, '--cpu-prof-name', `${label}.cpuprofile`]
    : [];
  const server = await startParity({
    root: ctx.root,
    dir,
    nodeArgs,
    // Per address too: the generator spreads 5,000 clients over two 127.0.0.x addresses, past the
    // default 1,000 per address (every client over it got BYE SERVER_BUSY, an error in spec).
    args: [
      '--max-clients',
      String(BENCH_MAX_CLIENTS),
      '--max-clients-per-address',
      String(BENCH_MAX_CLIENTS),
      // The ids scenario starts from 1M stored ids, the default cap: every new client's HELLO was
      // ERR ID_LIMIT, and its spec run never ended.
      '--max-ids',
      String(BENCH_MAX_IDS),
    ],
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
async function measure(ctx, target, label, load, statePath) {
  if (ctx.idleWaitMs > 0 && ctx.idleBudget.ms > 0) {
    const t = Date.now();
    await waitForIdle(Math.min(ctx.idleWaitMs, ctx.idleBudget.ms), ctx.log, 300);
    ctx.idleBudget.ms -= Date.now() - t;
  }
  const { server, dir } = await launch(ctx, target, `${target}-${label}`, statePath);
  const logPath = 'logPath' in server ? /** @type {string} */ (server.logPath) : null;
  const logSize = () => (logPath === null ? 0 : statSync(logPath).size);
  try {
    let written0 = 0;
    let written1 = 0;
    let log0 = 0;
    let log1 = 0;
    let cpu0 = 0;
    let cpu1 = 0;
    let m0 = machineTicks();
    let m1 = m0;
    let serverRss = 0;
    const result = await runLoad(
      {
        ...load,
        port: server.port,
        idPrefix: label.replace(/[^A-Za-z0-9]/g, ''),
        protocol: target === 'redis' ? 'redis' : 'parity',
      },
      {
        atMark() {
          cpu0 = server.cpuSeconds();
          m0 = machineTicks();
          written0 = writeBytes(server.pid);
          log0 = logSize();
        },
        atStop() {
          cpu1 = server.cpuSeconds();
          m1 = machineTicks();
          serverRss = server.rss();
          written1 = writeBytes(server.pid);
          log1 = logSize();
        },
      },
    );
    const exit = await server.stop();
    const logBytes =
      'logPath' in server ? statSync(/** @type {string} */ (server.logPath)).size : 0;
    const serverCpuCores = (cpu1 - cpu0) / (result.windowMs / 1000);
    const windowReplies = Math.max(1, (result.repliesPerSec * result.windowMs) / 1000);
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
      /**
       * Bytes the server caused to be written to disk in the window (/proc/<pid>/io write_bytes:
       * journal, checkpoints, log, and Redis's append-only file), per reply; and the message log's
       * growth per reply, the issue's yardstick. Replies stand for acknowledgements: in flood
       * every reply is one; in spec ~1 in 9 is an EVEN/ODD, which is logged too.
       */
      writeBytesPerReply: (written1 - written0) / windowReplies,
      logBytesPerReply: logPath === null ? null : (log1 - log0) / windowReplies,
    };
  } finally {
    await server.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** More CPU than this used by neither server nor generator means the run was disturbed. */
const DISTURBED_CORES = 0.3;
export const disturbed = (/** @type {{ otherCpuCores: number }} */ r) =>
  r.otherCpuCores > DISTURBED_CORES;

/** @param {Context} ctx @param {number} conns @param {number} inflight */
function floodLoad(ctx, conns, inflight) {
  return {
    mode: /** @type {const} */ ('flood'),
    conns,
    inflight,
    procs: 1,
    warmupMs: ctx.plan.floodWarmupMs,
    durationMs: ctx.plan.floodMs,
  };
}

/** @param {Context} ctx @param {number} conns @param {number} inflight */
export async function flood(ctx, conns, inflight) {
  const label = `flood-${conns}x${inflight}`;
  const load = floodLoad(ctx, conns, inflight);
  const withRedis = redisMissing() === null;
  let baseline = await measure(ctx, 'baseline', label, load);
  let parity = await measure(ctx, 'parity', label, load);
  let redis = withRedis ? await measure(ctx, 'redis', label, load) : null;
  if (
    ctx.plan.retryDisturbed &&
    (disturbed(baseline) || disturbed(parity) || (redis !== null && disturbed(redis)))
  ) {
    ctx.log(`  ${label}: other work took CPU during the run; measuring them again`);
    baseline = await measure(ctx, 'baseline', label, load);
    parity = await measure(ctx, 'parity', label, load);
    redis = withRedis ? await measure(ctx, 'redis', label, load) : null;
  }
  // Issue 10: closed loop (one in flight) and flood 50×16 against Redis, acks/s at least Redis's,
  // and in the closed loops p50 no higher.
  const vsRedis =
    redis !== null && (inflight === 1 ? conns === 50 || conns === 1000 : conns === 50);
  const p50ok =
    inflight > 1 ||
    redis === null ||
    (parity.latencyMs.p50 ?? Infinity) <= (redis.latencyMs.p50 ?? 0);
  return {
    key: label,
    scenario: `${inflight === 1 ? 'closed loop' : 'flood'} ${conns}×${inflight}`,
    unit: 'replies/s',
    parity: parity.repliesPerSec,
    baseline: baseline.repliesPerSec,
    redis: redis?.repliesPerSec ?? null,
    ratio: parity.repliesPerSec / baseline.repliesPerSec,
    ...(vsRedis
      ? {
          target: inflight === 1 ? '≥ Redis, p50 ≤ Redis' : '≥ Redis',
          pass: parity.repliesPerSec >= /** @type {any} */ (redis).repliesPerSec && p50ok,
        }
      : {}),
    detail: { parity, baseline, redis },
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
    writeBytesPerReply: r.writeBytesPerReply,
    logBytesPerReply: r.logBytesPerReply,
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
  const { capacity, limited } = await stepSearch(ctx.plan.specSteps, ctx.plan.bisect, run);
  steps.sort((a, b) => a.clients - b.clients);
  return { capacity, limited, steps };
}

/**
 * The spec search: tries each count of `counts` in turn until `run(n)` fails, then bisects
 * `bisect` times between the last pass and the first failure, to multiples of 250. `capacity` is
 * the largest count that passed (0 if none); `limited` means none failed, so it may hold more.
 * @param {number[]} counts
 * @param {number} bisect
 * @param {(n: number) => Promise<boolean>} run
 */
export async function stepSearch(counts, bisect, run) {
  let lo = 0;
  let hi = 0;
  for (const n of counts) {
    if (await run(n)) lo = n;
    else {
      hi = n;
      break;
    }
  }
  for (let i = 0; i < bisect && hi > 0; i++) {
    const mid = Math.round((lo + hi) / 2 / 250) * 250;
    if (mid <= lo || mid >= hi) break;
    if (await run(mid)) lo = mid;
    else hi = mid;
  }
  return { capacity: lo, limited: hi === 0 };
}

/** @param {Context} ctx */
export async function specCapacity(ctx) {
  const baseline = await specCapacityOf(ctx, 'baseline');
  const parity = await specCapacityOf(ctx, 'parity');
  const redis = redisMissing() === null ? await specCapacityOf(ctx, 'redis') : null;
  return {
    key: 'spec-capacity',
    scenario: `spec clients at p99 ≤ ${SPEC_P99_LIMIT_MS} ms, 0 errors`,
    unit: 'clients',
    parity: parity.capacity,
    baseline: baseline.capacity,
    redis: redis?.capacity ?? null,
    ratio: baseline.capacity > 0 ? parity.capacity / baseline.capacity : null,
    target: '≥ 0.95 × baseline and ≥ Redis',
    pass:
      parity.capacity >= 0.95 * baseline.capacity &&
      (redis === null || parity.capacity >= redis.capacity),
    note:
      [parity, baseline].some((x) => x.limited) && ctx.plan.specSteps.length > 0
        ? `the step list ends at ${Math.max(...ctx.plan.specSteps)}: a server that passed every step may hold more`
        : undefined,
    detail: { parity: parity.steps, baseline: baseline.steps, redis: redis?.steps ?? [] },
  };
}

/** The floor's two ways to commit; each row takes the better (bench/floor-server.mjs). */
const FLOOR_MODES = /** @type {const} */ (['floor-async', 'floor-blocking']);

/**
 * The floor (bench/floor-server.mjs: the bare server plus a JSON record per line, in one file
 * that is the journal too, with one fdatasync per group commit) beside Redis, in each closed loop
 * and flood of the plan, and its spec capacity: how far a server built like it, logging every line
 * durably before its OK, got on this machine. Both commit modes run; each row keeps the better.
 * @param {Context} ctx
 */
export async function floor(ctx) {
  const rows = [];
  const withRedis = redisMissing() === null;
  for (const [conns, inflight] of ctx.plan.flood) {
    const label = `flood-${conns}x${inflight}`;
    const load = floodLoad(ctx, conns, inflight);
    /** @type {Record<string, Awaited<ReturnType<typeof measure>>>} */
    const modes = {};
    for (const mode of FLOOR_MODES) modes[mode] = await measure(ctx, mode, label, load);
    const redis = withRedis ? await measure(ctx, 'redis', label, load) : null;
    const best = Object.values(modes).reduce((a, b) => (b.repliesPerSec > a.repliesPerSec ? b : a));
    rows.push({
      key: `floor-${label}`,
      scenario: `floor: ${inflight === 1 ? 'closed loop' : 'flood'} ${conns}×${inflight}`,
      unit: 'replies/s',
      floor: best.repliesPerSec,
      redis: redis?.repliesPerSec ?? null,
      ratio: redis === null ? null : best.repliesPerSec / redis.repliesPerSec,
      detail: { ...modes, redis },
    });
  }
  /** @type {Record<string, Awaited<ReturnType<typeof specCapacityOf>>>} */
  const spec = {};
  for (const mode of FLOOR_MODES) spec[mode] = await specCapacityOf(ctx, mode);
  rows.push({
    key: 'floor-spec-capacity',
    scenario: `floor: spec clients at p99 ≤ ${SPEC_P99_LIMIT_MS} ms, 0 errors`,
    unit: 'clients',
    floor: Math.max(...Object.values(spec).map((s) => s.capacity)),
    redis: null,
    detail: spec,
  });
  return rows;
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

/**
 * Startup with `ids` ids of 64 characters (the longest an id may be): from spawn to the listening
 * line, and the server's RSS then.
 * @param {Context} ctx @param {string} dir @param {number} ids @param {number} repeats
 */
async function startupWith(ctx, dir, ids, repeats) {
  const statePath = join(dir, `big-${ids}.json`);
  const file = await storeBench(ctx, [
    'write',
    '--path',
    statePath,
    '--ids',
    String(ids),
    '--id-length',
    '64',
  ]);
  const times = [];
  let rssBytes = 0;
  for (let i = 0; i < repeats; i++) {
    const server = await startParity({ root: ctx.root, dir, statePath });
    times.push(server.readyMs);
    rssBytes = Math.max(rssBytes, server.rss());
    await server.stop();
  }
  rmSync(statePath, { force: true });
  const sorted = [...times].sort((a, b) => a - b);
  return {
    ids,
    fileBytes: file.bytes,
    runsMs: times,
    medianMs: sorted[sorted.length >> 1],
    rssBytes,
  };
}

/** @param {Context} ctx */
export async function startup(ctx) {
  const dir = mkdtempSync(join(ctx.tmp, 'startup-'));
  try {
    const rows = [];
    const one = await startupWith(ctx, dir, ctx.plan.startupIds, ctx.plan.startupRepeats);
    const empty = await startParity({ root: ctx.root, dir: mkdtempSync(join(dir, 'empty-')) });
    await empty.stop();
    rows.push({
      key: 'startup',
      scenario: `startup, ${one.ids.toLocaleString('en-US')} ids of 64 characters`,
      unit: 'ms',
      parity: one.medianMs,
      baseline: null,
      ratio: null,
      target: one.ids >= 1_000_000 ? '≤ 2,000 ms' : undefined,
      pass: one.ids >= 1_000_000 ? one.medianMs <= 2_000 : undefined,
      detail: { ...one, emptyStateMs: empty.readyMs },
    });
    if (ctx.plan.startupBigIds > 0) {
      const big = await startupWith(ctx, dir, ctx.plan.startupBigIds, 1);
      rows.push({
        key: 'startup-big',
        scenario: `startup, ${big.ids.toLocaleString('en-US')} ids of 64 characters`,
        unit: 'ms',
        parity: big.medianMs,
        baseline: null,
        ratio: null,
        target: '≤ 20,000 ms, RSS < 2 GiB',
        pass: big.medianMs <= 20_000 && big.rssBytes < 2 ** 31,
        detail: big,
      });
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What the number of ids stored costs a commit: the closed loop 50×1 with 1,000 and with
 * 1,000,000 ids in the state file (p50 within 10%), and the spec load of 10,000 clients with
 * 10,000 and 1,000,000 ids: bytes written to disk per reply against the message log's bytes.
 * @param {Context} ctx
 */
export async function idsStored(ctx) {
  const dir = mkdtempSync(join(ctx.tmp, 'ids-'));
  try {
    /** @param {number} n */
    const state = async (n) => {
      const path = join(dir, `state-${n}.json`);
      await storeBench(ctx, ['write', '--path', path, '--ids', String(n)]);
      return path;
    };
    const small = await state(1_000);
    const tenK = await state(10_000);
    const big = await state(ctx.plan.idsBig);
    const closed = {
      mode: /** @type {const} */ ('flood'),
      conns: 50,
      inflight: 1,
      procs: 1,
      warmupMs: ctx.plan.floodWarmupMs,
      durationMs: ctx.plan.floodMs,
    };
    const p1k = await measure(ctx, 'parity', 'ids-1k', closed, small);
    const p1m = await measure(ctx, 'parity', 'ids-1m', closed, big);
    const clients = ctx.plan.bytesClients;
    const procs = Math.ceil(clients / CLIENTS_PER_PROC);
    const spec = {
      mode: /** @type {const} */ ('spec'),
      conns: clients,
      procs,
      srcAddrs: 2 * procs,
      warmupMs: ctx.plan.specWarmupMs,
      durationMs: ctx.plan.specMs,
    };
    const s10k = await measure(ctx, 'parity', 'bytes-10k', spec, tenK);
    const s1m = await measure(ctx, 'parity', 'bytes-1m', spec, big);
    const ratio = (/** @type {any} */ r) => r.writeBytesPerReply / Math.max(1, r.logBytesPerReply);
    const a = p1k.latencyMs.p50 ?? NaN;
    const b = p1m.latencyMs.p50 ?? NaN;
    return [
      {
        key: 'ids-p50',
        scenario: `closed loop 50×1 p50, ${ctx.plan.idsBig.toLocaleString('en-US')} ids stored / 1,000`,
        unit: 'ratio',
        parity: b / a,
        baseline: null,
        ratio: null,
        target: '≤ 1.10',
        pass: b / a <= 1.1,
        detail: { small: p1k, big: p1m },
      },
      ...[
        ['10k', s10k],
        [ctx.plan.idsBig.toLocaleString('en-US'), s1m],
      ].map(([label, r]) => ({
        key: `write-bytes-${r === s10k ? 'small' : 'big'}`,
        scenario: `spec ${clients.toLocaleString('en-US')} clients, ${label} ids: disk bytes / log bytes per reply`,
        unit: 'ratio',
        parity: ratio(r),
        baseline: null,
        ratio: null,
        target: '≤ 2',
        pass: ratio(r) <= 2,
        detail: r,
      })),
    ];
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
