#!/usr/bin/env node
/**
 * `npm run bench:cluster` (issue 13): spec clients at p99 ≤ 100 ms with one Parity server on the
 * file store (direct, and through HAProxy) and with 1, 2 and 3 servers on one Redis through
 * HAProxy, all in one run, with the CPU each kind of process spent per reply, and the scaling
 * model those costs give. Needs `npm run build`, redis-server and haproxy.
 *
 *   node bench/cluster.mjs            quick mode, about 5 minutes
 *   node bench/cluster.mjs --full     the step search with bisection, 10 s windows (20-30 minutes)
 *   node bench/cluster.mjs --smoke    seconds, 20 clients (test/bench-smoke.ts runs this)
 *   --only file-direct,file-haproxy,redis-1,redis-2,redis-3   a subset
 *   --out DIR       write cluster.json and cluster.md (the two report sections) into DIR
 *                   (default bench/results/)
 *   --publish       write bench/cluster-results.json and replace the Cluster and Scaling sections
 *                   of the committed BENCHMARKS.md (every topology, quick or full)
 *   --root DIR      the Parity checkout to measure (default: this one)
 *   --wait-idle S   wait up to S seconds (default 60) for the machine to be idle before each step
 *   --commit TEXT   how the report names the measured build (default: git HEAD of --root)
 *   --from FILE     measure nothing: redraw the sections from saved results (a cluster.json, or
 *                   bench/cluster-results.json), into --out DIR or, with --publish, the report
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';
import { clusterCapacity, TOPOLOGIES } from './lib/cluster.mjs';
import { clusterSections, spliceClusterSections } from './lib/cluster-report.mjs';
import { haproxyMaxConn, haproxyPath } from './lib/haproxy.mjs';
import { waitForIdle } from './lib/scenarios.mjs';
import { killAll, redisServerPath } from './lib/servers.mjs';
import { machine } from './report.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/**
 * Client counts and durations of each mode. Through HAProxy the counts stop at what its
 * descriptors allow (see haproxyClientCeiling), which is added as the last step if the list goes
 * past it.
 * @type {Record<'smoke' | 'quick' | 'full', import('./lib/cluster.mjs').ClusterPlan & { only: string[], deadlineMs: number, idleWaitMs: number, idleBudgetMs: number }>}
 */
const PLANS = {
  smoke: {
    only: ['file-direct', 'redis-2'],
    directSteps: [20],
    haproxySteps: [20],
    bisect: 0,
    warmupMs: 200,
    windowMs: 1_000,
    connectTimeoutMs: 30_000,
    retryDisturbed: false,
    idleWaitMs: 0,
    idleBudgetMs: 0,
    deadlineMs: 60_000,
  },
  quick: {
    only: TOPOLOGIES.map((t) => t.key),
    directSteps: [4_000, 10_000, 14_000],
    haproxySteps: [2_000, 5_000, 10_000],
    bisect: 0,
    warmupMs: 1_500,
    windowMs: 3_000,
    connectTimeoutMs: 60_000,
    retryDisturbed: true,
    idleWaitMs: 5_000,
    idleBudgetMs: 30_000,
    deadlineMs: 900_000,
  },
  full: {
    only: TOPOLOGIES.map((t) => t.key),
    directSteps: [2_000, 4_000, 8_000, 10_000, 12_000, 14_000, 16_000, 18_000],
    haproxySteps: [1_000, 2_000, 4_000, 6_000, 8_000, 10_000],
    bisect: 2,
    warmupMs: 3_000,
    windowMs: 10_000,
    // 10,000 clients connect in seconds on an idle machine; on a busy one, hardly at all.
    connectTimeoutMs: 120_000,
    retryDisturbed: true,
    idleWaitMs: 60_000,
    idleBudgetMs: 900_000,
    deadlineMs: 75 * 60_000,
  },
};

const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    publish: { type: 'boolean', default: false },
    root: { type: 'string', default: resolve(HERE, '..') },
    'wait-idle': { type: 'string', default: '60' },
    commit: { type: 'string' },
    from: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: node bench/cluster.mjs [--quick | --full | --smoke] [--only file-direct,redis-1,...]\n' +
      '                              [--out DIR | --publish] [--root DIR] [--wait-idle S]\n' +
      '       node bench/cluster.mjs --from RESULTS.json [--out DIR | --publish]\n',
  );
  process.exit(0);
}
/** The single-server report's results (bench/results.json), which the Scaling section compares. */
const singleServer = existsSync(join(HERE, 'results.json'))
  ? JSON.parse(readFileSync(join(HERE, 'results.json'), 'utf8'))
  : null;
if (values.from) {
  const saved = JSON.parse(readFileSync(values.from, 'utf8'));
  const sections = clusterSections(saved, singleServer);
  if (values.publish) {
    const committed = join(HERE, 'cluster-results.json');
    if (resolve(values.from) !== committed)
      writeFileSync(committed, `${JSON.stringify(saved, null, 2)}\n`);
    const md = join(HERE, '../BENCHMARKS.md');
    writeFileSync(md, spliceClusterSections(readFileSync(md, 'utf8'), sections));
  } else {
    const dir = resolve(values.out ?? join(HERE, 'results'));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cluster.md'), sections);
  }
  process.exit(0);
}
const mode = values.full ? 'full' : values.smoke ? 'smoke' : 'quick';
const plan = PLANS[mode];
const only = values.only ? values.only.split(',') : plan.only;
const known = TOPOLOGIES.map((t) => t.key);
const root = resolve(values.root);
const problem =
  only.find((k) => !known.includes(k)) !== undefined
    ? `unknown topology in --only ${only.join(',')}; choose from ${known.join(', ')}`
    : !existsSync(join(root, 'dist/cli/server.js'))
      ? `${root}/dist is missing; run \`npm run build\` first`
      : haproxyPath() === null
        ? 'haproxy is not installed (apt-get install haproxy)'
        : redisServerPath() === null
          ? 'redis-server is not installed (apt-get install redis-server)'
          : values.publish && values.out
            ? '--publish and --out both say where to write'
            : values.publish && (mode === 'smoke' || only.length < known.length)
              ? '--publish takes every topology, in a --quick or --full run'
              : null;
if (problem !== null) {
  process.stderr.write(`bench/cluster: ${problem}\n`);
  process.exit(2);
}
const outDir = values.publish ? null : resolve(values.out ?? join(HERE, 'results'));
if (outDir) mkdirSync(outDir, { recursive: true });
const paths = outDir
  ? { results: join(outDir, 'cluster.json'), md: join(outDir, 'cluster.md') }
  : { results: join(HERE, 'cluster-results.json'), md: join(HERE, '../BENCHMARKS.md') };

const tmp = mkdtempSync(join(tmpdir(), 'parity-cluster-'));
const cleanUp = () => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
};
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    process.stderr.write(`bench/cluster: ${signal}, stopping every process it started\n`);
    cleanUp();
    process.exit(130);
  });
}
setTimeout(() => {
  process.stderr.write(`bench/cluster: over the ${plan.deadlineMs / 1000} s limit of --${mode}\n`);
  cleanUp();
  process.exit(1);
}, plan.deadlineMs).unref();

const log = (/** @type {string} */ line) => process.stdout.write(`${line}\n`);
const waitIdleMs = Number(values['wait-idle']) * 1000;
/** @type {import('./lib/cluster.mjs').ClusterContext} */
const ctx = {
  root,
  tmp,
  plan,
  log,
  idleWaitMs: Math.min(waitIdleMs, plan.idleWaitMs),
  idleBudget: { ms: waitIdleMs > 0 ? plan.idleBudgetMs : 0 },
  haproxyMaxConn: haproxyMaxConn(),
};
const info = machine(root);
if (values.commit) info.commit = values.commit;
const started = performance.now();
const uptimeAtStart = execFileSync('uptime', { encoding: 'utf8' }).trim();
log(`Parity cluster benchmark, --${mode}: ${info.cores} cores (${info.cpu}), Node ${info.node}`);
log(`uptime: ${uptimeAtStart}`);
log(
  `haproxy -n ${ctx.haproxyMaxConn} (two descriptors per connection, open-file limit ${info.openFiles})`,
);
const busyAtStart =
  ctx.idleBudget.ms > 0 ? await waitForIdle(Math.min(waitIdleMs, ctx.idleBudget.ms), log) : null;

/** @type {Awaited<ReturnType<typeof clusterCapacity>>[]} */
const topologies = [];
try {
  for (const topo of TOPOLOGIES.filter((t) => only.includes(t.key))) {
    log(`${topo.label}:`);
    topologies.push(await clusterCapacity(ctx, topo));
    save(false);
  }
} finally {
  cleanUp();
}
const results = save(true);
const sections = clusterSections(results, singleServer);
if (outDir) writeFileSync(paths.md, sections);
else writeFileSync(paths.md, spliceClusterSections(readFileSync(paths.md, 'utf8'), sections));
log(
  `done in ${((performance.now() - started) / 1000).toFixed(0)} s; results in ${paths.results}, report in ${paths.md}`,
);

/** Writes the results file; `complete` is false while the run is still going. */
function save(/** @type {boolean} */ complete) {
  const out = {
    meta: {
      date: new Date().toISOString(),
      mode,
      complete,
      elapsedS: Math.round((performance.now() - started) / 1000),
      command: `node bench/cluster.mjs ${process.argv.slice(2).join(' ')}`.trim(),
      machine: info,
      uptimeAtStart,
      uptimeAtEnd: complete ? execFileSync('uptime', { encoding: 'utf8' }).trim() : null,
      loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
      busyAtStart,
      haproxyMaxConn: ctx.haproxyMaxConn,
      plan,
    },
    topologies,
  };
  writeFileSync(paths.results, `${JSON.stringify(out, null, 2)}\n`);
  return out;
}
