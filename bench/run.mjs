#!/usr/bin/env node
/**
 * `npm run bench`: measures Parity (bin/server, built in dist/) and a bare node:net baseline side
 * by side, prints one row per scenario, and writes results.json, BENCHMARKS.md and spec-p99.svg
 * into bench/results/ (git-ignored), or with --publish over the committed report.
 *
 *   node bench/run.mjs            quick mode, about 5 minutes
 *   node bench/run.mjs --full     every scenario at full size (about 10-15 minutes)
 *   node bench/run.mjs --smoke    a few seconds, tiny sizes (the test suite runs this)
 *   --only flood,spec,idle,store,startup,ids   a subset (results.json only, no report)
 *   --only floor    bench/floor-server.mjs (the least any server that keeps Parity's log promise
 *                   must do) beside Redis: never part of a full run or --publish; it is quoted
 *                   by hand in BENCHMARKS.md's "The floor"
 *   --out DIR       write results.json, BENCHMARKS.md and spec-p99.svg into DIR instead
 *   --publish       rewrite the committed BENCHMARKS.md, bench/results.json, bench/spec-p99.svg:
 *                   every scenario, quick or full (a casual run once overwrote them)
 *   --root DIR      the Parity checkout to measure (default: this one; needs `npm run build`)
 *   --profile DIR   run every Parity server under --cpu-prof, profiles into DIR
 *   --wait-idle S   wait up to S seconds (default 60) for other work on the machine to end, first
 *                   and before each measurement, within the mode's total budget (quick 15 s,
 *                   full 5 min); 0 never waits
 *   --commit TEXT   how the report names the measured build (default: git HEAD of --root)
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';
import { killAll } from './lib/servers.mjs';
import * as scenarios from './lib/scenarios.mjs';
import { committedClusterResults, machine, writeReport } from './report.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/**
 * Sizes and durations of each mode. idleWaitMs: before each measurement, wait at most this long
 * for other work on the machine to finish; idleBudgetMs: at most this much waiting in all.
 * @type {Record<'smoke' | 'quick' | 'full', import('./lib/scenarios.mjs').Plan & { deadlineMs: number, idleWaitMs: number, idleBudgetMs: number }>}
 */
const PLANS = {
  smoke: {
    flood: [
      [1, 1],
      [10, 4],
    ],
    floodWarmupMs: 100,
    floodMs: 300,
    specSteps: [20],
    specWarmupMs: 200,
    specMs: 1_000,
    bisect: 0,
    idleClients: 100,
    idleSettleMs: 400,
    retryDisturbed: false,
    storeIds: [1_000],
    commits: 3,
    startupIds: 1_000,
    startupRepeats: 1,
    startupBigIds: 0,
    bytesClients: 100,
    idsBig: 10_000,
    idleWaitMs: 0,
    idleBudgetMs: 0,
    deadlineMs: 90_000,
  },
  quick: {
    flood: [
      [50, 1],
      [1000, 1],
      [50, 16],
    ],
    floodWarmupMs: 500,
    floodMs: 2_000,
    specSteps: [1_000, 4_000, 10_000],
    specWarmupMs: 1_500,
    specMs: 3_000,
    bisect: 0,
    idleClients: 10_000,
    idleSettleMs: 2_000,
    retryDisturbed: true,
    storeIds: [1_000, 10_000, 100_000, 1_000_000],
    commits: 3,
    startupIds: 1_000_000,
    startupRepeats: 1,
    startupBigIds: 0,
    bytesClients: 10_000,
    idsBig: 1_000_000,
    idleWaitMs: 5_000,
    idleBudgetMs: 15_000,
    // Redis beside Parity and the baseline, and the ids scenario (two 1M-id starts, two 10,000
    // client spec runs), took the quick mode past 3 minutes; on a busy machine, with the retries
    // of disturbed runs, past 8.
    deadlineMs: 900_000,
  },
  full: {
    flood: [
      [1, 1],
      [50, 1],
      [1000, 1],
      [50, 16],
    ],
    floodWarmupMs: 2_000,
    floodMs: 10_000,
    specSteps: [1_000, 2_000, 4_000, 6_000, 8_000, 10_000, 12_000, 14_000, 16_000, 18_000, 19_500],
    specWarmupMs: 3_000,
    specMs: 10_000,
    bisect: 2,
    idleClients: 10_000,
    idleSettleMs: 2_000,
    retryDisturbed: true,
    storeIds: [1_000, 10_000, 100_000, 1_000_000],
    commits: 10,
    startupIds: 1_000_000,
    startupRepeats: 3,
    startupBigIds: 10_000_000,
    bytesClients: 10_000,
    idsBig: 1_000_000,
    idleWaitMs: 30_000,
    idleBudgetMs: 300_000,
    deadlineMs: 25 * 60_000,
  },
};
const ALL = ['flood', 'spec', 'idle', 'store', 'startup', 'ids'];
/** Run only when named in --only: they measure the targets' reach, not Parity. */
const EXTRA = ['floor'];

const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    publish: { type: 'boolean', default: false },
    root: { type: 'string', default: resolve(HERE, '..') },
    profile: { type: 'string' },
    'wait-idle': { type: 'string', default: '60' },
    commit: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: node bench/run.mjs [--quick | --full | --smoke] [--only flood,spec,idle,store,startup,ids,floor]\n' +
      '                          [--out DIR | --publish] [--root DIR] [--profile DIR]\n' +
      'Writes into bench/results/ unless --out DIR; --publish rewrites the committed report.\n',
  );
  process.exit(0);
}

const mode = values.full ? 'full' : values.smoke ? 'smoke' : 'quick';
const plan = PLANS[mode];
const only = values.only ? values.only.split(',') : ALL;
const unknown = only.filter((s) => !ALL.includes(s) && !EXTRA.includes(s));
if (unknown.length > 0) {
  process.stderr.write(
    `bench: unknown scenario ${unknown.join(', ')}; choose from ${[...ALL, ...EXTRA].join(', ')}\n`,
  );
  process.exit(2);
}
const root = resolve(values.root);
if (!existsSync(join(root, 'dist/cli/server.js'))) {
  process.stderr.write(`bench: ${root}/dist is missing; run \`npm run build\` first\n`);
  process.exit(2);
}
const partial = ALL.some((s) => !only.includes(s)) || only.some((s) => EXTRA.includes(s));
// The committed report is what the README quotes: only a deliberate, complete run replaces it.
const refusal = !values.publish
  ? null
  : values.out
    ? '--publish and --out both say where to write'
    : partial
      ? '--publish needs every scenario, not --only, and no --only floor'
      : mode === 'smoke'
        ? '--publish takes a --quick or --full run, not --smoke'
        : null;
if (refusal !== null) {
  process.stderr.write(`bench: ${refusal}\n`);
  process.exit(2);
}
const outDir = values.publish ? null : resolve(values.out ?? join(HERE, 'results'));
const paths = outDir
  ? {
      results: join(outDir, 'results.json'),
      md: join(outDir, 'BENCHMARKS.md'),
      svg: join(outDir, 'spec-p99.svg'),
    }
  : {
      results: join(HERE, 'results.json'),
      md: join(HERE, '../BENCHMARKS.md'),
      svg: join(HERE, 'spec-p99.svg'),
    };
if (outDir) mkdirSync(outDir, { recursive: true });
const profileDir = values.profile ? resolve(values.profile) : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });

const tmp = mkdtempSync(join(tmpdir(), 'parity-bench-'));
const cleanUp = () => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
};
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping every process it started\n`);
    cleanUp();
    process.exit(130);
  });
}
const deadline = setTimeout(() => {
  process.stderr.write(
    `bench: over the ${plan.deadlineMs / 1000} s limit of --${mode}; giving up\n`,
  );
  cleanUp();
  process.exit(1);
}, plan.deadlineMs);
deadline.unref();

const log = (/** @type {string} */ line) => process.stdout.write(`${line}\n`);
/** @type {import('./lib/scenarios.mjs').Context} */
const ctx = {
  root,
  tmp,
  plan,
  profileDir,
  log,
  idleWaitMs: Math.min(Number(values['wait-idle']) * 1000, plan.idleWaitMs),
  // All the waiting for other work, over the whole run, so the run keeps to its time limit.
  idleBudget: { ms: Number(values['wait-idle']) > 0 ? plan.idleBudgetMs : 0 },
};
const started = performance.now();
const info = machine(root);
if (values.commit) info.commit = values.commit;
log(`Parity benchmark, --${mode}: ${info.cores} cores (${info.cpu}), Node ${info.node}`);
log(`writing ${outDir === null ? 'the committed report (--publish)' : `into ${outDir}`}`);
const noRedis = scenarios.redisMissing();
if (noRedis !== null) log(`note: ${noRedis}`);
// Other work on the machine takes cores from the server and the generator: wait for quiet first,
// and every row reports the CPU that neither of them used.
const waitStart = Date.now();
const busyAtStart = await scenarios.waitForIdle(
  Math.min(Number(values['wait-idle']) * 1000, ctx.idleBudget.ms),
  log,
);
ctx.idleBudget.ms -= Date.now() - waitStart;
if (busyAtStart >= 0.1)
  log(`warning: the machine is ${(busyAtStart * 100).toFixed(0)}% busy with other work`);

/** @type {any[]} */
const rows = [];
let lastRowAt = performance.now();
const print = (/** @type {any} */ row) => {
  const now = performance.now();
  rows.push({ ...row, elapsedS: Math.round((now - lastRowAt) / 100) / 10 });
  lastRowAt = now;
  log(formatRow(row));
  save(false); // a run cut short still leaves the rows it finished
};
try {
  if (only.includes('flood'))
    for (const [c, w] of plan.flood) print(await scenarios.flood(ctx, c, w));
  if (only.includes('spec')) print(await scenarios.specCapacity(ctx));
  if (only.includes('flood') || only.includes('spec')) print(scenarios.logBytes(rows));
  if (only.includes('idle')) print(await scenarios.idleRss(ctx));
  if (only.includes('store')) for (const row of await scenarios.storeCommit(ctx)) print(row);
  if (only.includes('startup')) for (const row of await scenarios.startup(ctx)) print(row);
  if (only.includes('ids')) for (const row of await scenarios.idsStored(ctx)) print(row);
  if (only.includes('floor')) for (const row of await scenarios.floor(ctx)) print(row);
} finally {
  cleanUp();
}

const elapsedS = (performance.now() - started) / 1000;
const results = save(true);
// The committed report keeps bench/cluster.mjs's sections, from their own committed results.
if (!partial || values.out)
  writeReport(results, paths.md, paths.svg, outDir === null ? committedClusterResults() : null);
log(
  `done in ${elapsedS.toFixed(0)} s; results in ${paths.results}${!partial || values.out ? `, report in ${paths.md}` : ''}`,
);

/** Writes results.json; `complete` is false while the run is still going. */
function save(/** @type {boolean} */ complete) {
  const results = {
    meta: {
      date: new Date().toISOString(),
      mode,
      complete,
      scenarios: only,
      elapsedS: Math.round((performance.now() - started) / 1000),
      command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
      machine: info,
      busyAtStart,
      plan,
    },
    rows,
  };
  writeFileSync(paths.results, `${JSON.stringify(results, null, 2)}\n`);
  return results;
}

/** @param {any} row */
function formatRow(row) {
  const n = (/** @type {number | null} */ x) =>
    x === null || x === undefined
      ? '–'
      : row.unit === 'ms'
        ? `${x.toFixed(1)} ms`
        : row.unit === 'ratio'
          ? x.toFixed(2)
          : Math.round(x).toLocaleString('en-US');
  const ratio = typeof row.ratio === 'number' ? `  ratio ${row.ratio.toFixed(2)}` : '';
  if (row.key?.startsWith('floor-')) {
    const redis = row.redis === null ? '' : `  redis ${n(row.redis)}`;
    return `${row.scenario.padEnd(40)} floor ${n(row.floor)} ${row.unit}${redis}${ratio}`;
  }
  const target = row.target ? `  target ${row.target}: ${row.pass ? 'pass' : 'FAIL'}` : '';
  const unit = row.unit === 'ms' ? '' : ` ${row.unit}`;
  let extra = '';
  if (row.key?.startsWith('flood-')) {
    const p = row.detail.parity.latencyMs;
    const b = row.detail.baseline.latencyMs;
    extra = `  p50/p99/p999 ms parity ${p.p50}/${p.p99}/${p.p999} baseline ${b.p50}/${b.p99}/${b.p999}`;
    const r = row.detail.redis?.latencyMs;
    if (r) extra += ` redis ${r.p50}/${r.p99}/${r.p999}`;
    const other = Math.max(row.detail.parity.otherCpuCores, row.detail.baseline.otherCpuCores);
    if (other > 0.2) extra += `  OTHER LOAD ${other.toFixed(2)} cores`;
  }
  const redis = row.redis !== undefined && row.redis !== null ? `  redis ${n(row.redis)}` : '';
  return `${row.scenario.padEnd(40)} parity ${n(row.parity)}${unit}  baseline ${n(row.baseline)}${redis}${ratio}${target}${extra}`;
}
