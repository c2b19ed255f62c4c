/**
 * The cluster scenarios (issue 13): how many spec clients hold p99 ≤ 100 ms with one Parity server
 * on the file store (direct, and through HAProxy), and with 1, 2 and 3 Parity servers on one Redis
 * through HAProxy; and what each kind of process (Parity, HAProxy, Redis, the generator) spent in
 * CPU per reply. Each step starts the whole system afresh (Redis empty, new ports), runs the spec
 * load through the same generator and step search as the single-server bench, and stops it all.
 */
import { cpus, loadavg } from 'node:os';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ConnectTimeout, runLoad } from './load.mjs';
import { showStat, startHaproxy } from './haproxy.mjs';
import {
  BENCH_MAX_CLIENTS,
  CLIENTS_PER_PROC,
  disturbed,
  fmt,
  SPEC_P99_LIMIT_MS,
  stepSearch,
  waitForIdle,
} from './scenarios.mjs';
import { cpuSeconds, machineTicks, startParity, startRedis, writeBytes } from './servers.mjs';

/**
 * @typedef {{
 *   key: string, label: string, store: 'file' | 'redis', servers: number, haproxy: boolean,
 * }} Topology
 * @typedef {{
 *   directSteps: number[], haproxySteps: number[], bisect: number, warmupMs: number,
 *   windowMs: number, connectTimeoutMs: number, retryDisturbed: boolean,
 * }} ClusterPlan
 * @typedef {{
 *   root: string, tmp: string, plan: ClusterPlan, log: (line: string) => void,
 *   idleWaitMs: number, idleBudget: { ms: number }, haproxyMaxConn: number,
 * }} ClusterContext
 * @typedef {'parity' | 'haproxy' | 'redis'} Kind
 */

/**
 * What is measured, in order. Several servers are separate processes on their own ports, one
 * `server` line each in the HAProxy config, as deploy/haproxy.cfg ships (not `--workers`, which
 * shares one port among the processes of one server).
 * @type {Topology[]}
 */
export const TOPOLOGIES = [
  {
    key: 'file-direct',
    label: 'file store, 1 server, direct',
    store: 'file',
    servers: 1,
    haproxy: false,
  },
  {
    key: 'file-haproxy',
    label: 'file store, 1 server, HAProxy',
    store: 'file',
    servers: 1,
    haproxy: true,
  },
  { key: 'redis-1', label: 'Redis, 1 server, HAProxy', store: 'redis', servers: 1, haproxy: true },
  { key: 'redis-2', label: 'Redis, 2 servers, HAProxy', store: 'redis', servers: 2, haproxy: true },
  { key: 'redis-3', label: 'Redis, 3 servers, HAProxy', store: 'redis', servers: 3, haproxy: true },
];

/** Clients HAProxy is given beyond the step's: none, but its maxconn leaves this margin. */
const HAPROXY_MARGIN = 50;

/** The most spec clients a step through HAProxy can have here (its descriptors), to 250. */
export const haproxyClientCeiling = (/** @type {number} */ maxConn) =>
  Math.floor((maxConn - HAPROXY_MARGIN) / 250) * 250;

/**
 * Starts Redis (if the store is Redis), the servers, and HAProxy in front (if any), in `dir`.
 * @param {ClusterContext} ctx @param {Topology} topo @param {string} dir
 */
export async function startSystem(ctx, topo, dir) {
  /** @type {Array<{ kind: Kind, pid: number, stop(): Promise<unknown> }>} */
  const started = [];
  const stop = async () => {
    // The balancer first, so no client is sent to a server that is going; Redis last.
    for (const p of [...started].reverse()) await p.stop();
  };
  try {
    let store;
    if (topo.store === 'redis') {
      const redisDir = join(dir, 'redis');
      mkdirSync(redisDir);
      const redis = await startRedis({ dir: redisDir, maxClients: BENCH_MAX_CLIENTS });
      started.push({ kind: 'redis', pid: redis.pid, stop: () => redis.stop() });
      store = `redis://127.0.0.1:${redis.port}/0`;
    }
    const servers = [];
    for (let i = 1; i <= topo.servers; i++) {
      const serverDir = join(dir, `parity${i}`);
      mkdirSync(serverDir);
      const server = await startParity({
        root: ctx.root,
        dir: serverDir,
        ...(store ? { store } : {}),
        args: [
          '--max-clients',
          String(BENCH_MAX_CLIENTS),
          // Behind HAProxy the address each server sees is the client's, from the PROXY header:
          // the generator's few 127.0.0.x addresses, far past the default 1,000 per address.
          '--max-clients-per-address',
          String(BENCH_MAX_CLIENTS),
          '--node-name',
          `parity${i}`,
          // Several servers on one machine would race for the live view's port; nobody watches.
          '--no-http',
          ...(topo.haproxy ? ['--proxy-protocol'] : []),
        ],
      });
      started.push({ kind: 'parity', pid: server.pid, stop: () => server.stop() });
      servers.push(server);
    }
    let port = /** @type {number} */ (servers[0]?.port);
    /** @type {string | null} */
    let statsPath = null;
    if (topo.haproxy) {
      const haproxyDir = join(dir, 'haproxy');
      mkdirSync(haproxyDir);
      const haproxy = await startHaproxy({
        root: ctx.root,
        dir: haproxyDir,
        serverPorts: servers.map((s) => s.port),
        maxConn: ctx.haproxyMaxConn,
      });
      started.push({ kind: 'haproxy', pid: haproxy.pid, stop: () => haproxy.stop() });
      port = haproxy.port;
      statsPath = haproxy.statsPath;
    }
    return { port, statsPath, processes: started, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * CPU seconds and bytes written of each process, summed by kind, and the busiest single process
 * of each kind in CPU seconds.
 * @param {Array<{ kind: Kind, pid: number }>} processes
 */
function sample(processes) {
  /** @type {Record<Kind, { cpu: number, maxCpu: number, written: number, n: number }>} */
  const by = {
    parity: { cpu: 0, maxCpu: 0, written: 0, n: 0 },
    haproxy: { cpu: 0, maxCpu: 0, written: 0, n: 0 },
    redis: { cpu: 0, maxCpu: 0, written: 0, n: 0 },
  };
  const each = processes.map((p) => ({
    kind: p.kind,
    cpu: cpuSeconds(p.pid),
    written: writeBytes(p.pid),
  }));
  for (const p of each) {
    by[p.kind].cpu += p.cpu;
    by[p.kind].written += p.written;
    by[p.kind].n++;
  }
  return { by, each };
}

/**
 * One spec step: the system started, `clients` spec clients through it, one measuring window with
 * every process's CPU (and the machine's) read at its edges, then all of it stopped.
 * @param {ClusterContext} ctx @param {Topology} topo @param {number} clients
 */
async function clusterStep(ctx, topo, clients) {
  // The machine's busy share just before the step (after waiting for quiet, if allowed): what
  // other work there was when it started.
  const waitMs = Math.max(0, Math.min(ctx.idleWaitMs, ctx.idleBudget.ms));
  const t = Date.now();
  const busyBefore = await waitForIdle(waitMs, ctx.log, 300);
  ctx.idleBudget.ms -= Date.now() - t;
  const loadAverage = loadavg().map((x) => Math.round(x * 100) / 100);
  const dir = mkdtempSync(join(ctx.tmp, `${topo.key}-${clients}-`));
  const system = await startSystem(ctx, topo, dir);
  try {
    let s0 = sample(system.processes);
    let s1 = s0;
    let m0 = machineTicks();
    let m1 = m0;
    /** @type {Promise<Record<string, number> | null>} */
    let spread = Promise.resolve(null);
    const procs = Math.ceil(clients / CLIENTS_PER_PROC);
    /** @type {Awaited<ReturnType<typeof runLoad>>} */
    let r;
    try {
      r = await runLoad(
        {
          mode: 'spec',
          port: system.port,
          conns: clients,
          procs,
          srcAddrs: 2 * procs,
          idPrefix: `${topo.key}${clients}`.replace(/[^A-Za-z0-9]/g, ''),
          warmupMs: ctx.plan.warmupMs,
          durationMs: ctx.plan.windowMs,
          connectTimeoutMs: ctx.plan.connectTimeoutMs,
        },
        {
          atMark() {
            s0 = sample(system.processes);
            m0 = machineTicks();
            if (system.statsPath !== null) spread = clientsPerServer(system.statsPath);
          },
          atStop() {
            s1 = sample(system.processes);
            m1 = machineTicks();
          },
        },
      );
    } catch (err) {
      if (!(err instanceof ConnectTimeout)) throw err;
      // Not even connected: a failed step, with nothing measured but what there was before it.
      return {
        ...notMeasured(clients, procs, /** @type {Error} */ (err).message),
        otherCpuCores: busyBefore * cpus().length,
        busyBefore,
        loadAverage,
      };
    }
    const windowS = r.windowMs / 1000;
    const replies = Math.max(1, r.repliesPerSec * windowS);
    /** @type {Record<Kind, number>} */
    const cores = { parity: 0, haproxy: 0, redis: 0 };
    /** @type {Record<Kind, number>} */
    const writeBytesPerReply = { parity: 0, haproxy: 0, redis: 0 };
    for (const kind of /** @type {Kind[]} */ (['parity', 'haproxy', 'redis'])) {
      cores[kind] = (s1.by[kind].cpu - s0.by[kind].cpu) / windowS;
      writeBytesPerReply[kind] = (s1.by[kind].written - s0.by[kind].written) / replies;
    }
    const parityEach = s1.each
      .map((p, i) => ({ ...p, cpu0: s0.each[i]?.cpu ?? 0 }))
      .filter((p) => p.kind === 'parity')
      .map((p) => (p.cpu - p.cpu0) / windowS);
    const machineBusy = (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total);
    const measured = cores.parity + cores.haproxy + cores.redis + r.genCpuCores;
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
      /** CPU in cores over the window, each kind's processes together. */
      cores,
      /** The busiest Parity process, in cores: near 1 means that server's one thread is full. */
      parityMaxCores: Math.max(0, ...parityEach),
      genCpuCores: r.genCpuCores,
      genCpuMaxProc: r.genCpuMaxProc,
      genLagP99Ms: r.genLagP99Ms,
      lateTicks: r.lateTicks,
      /** /proc/<pid>/io write_bytes per reply: Parity's message logs, Redis's append-only file. */
      writeBytesPerReply,
      machineBusy,
      /** CPU used by none of the measured processes: kernel network work, or other work. */
      otherCpuCores: Math.max(0, machineBusy * cpus().length - measured),
      /** The machine's busy share in the 0.3 s before the step began. */
      busyBefore,
      loadAverage,
      /** Clients on each server as HAProxy counted them at the window's start. */
      clientsPerServer: await spread,
    };
  } finally {
    await system.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The record of a step whose clients could not all connect: it fails, with the reason as its one
 * error, and no latency or CPU figures.
 * @param {number} clients @param {number} procs @param {string} reason
 */
function notMeasured(clients, procs, reason) {
  return {
    clients,
    pass: false,
    p50: null,
    p99: null,
    p999: null,
    max: null,
    errors: 1,
    errorKinds: { [reason]: 1 },
    repliesPerSec: 0,
    samples: 0,
    connectMs: null,
    procs,
    cores: { parity: 0, haproxy: 0, redis: 0 },
    parityMaxCores: 0,
    genCpuCores: 0,
    genCpuMaxProc: 0,
    genLagP99Ms: 0,
    lateTicks: 0,
    writeBytesPerReply: { parity: 0, haproxy: 0, redis: 0 },
    machineBusy: null,
    clientsPerServer: null,
  };
}

/** HAProxy's current connection count per server. */
async function clientsPerServer(/** @type {string} */ statsPath) {
  try {
    const rows = await showStat(statsPath);
    return Object.fromEntries(
      rows
        .filter((r) => r.svname !== 'FRONTEND' && r.svname !== 'BACKEND')
        .map((r) => [r.svname ?? '', Number(r.scur)]),
    );
  } catch {
    return {};
  }
}

/**
 * The step search for one topology: the single-server bench's counts (direct), or those up to
 * what HAProxy's descriptors allow (through it), with its retry of a failure under other load.
 * @param {ClusterContext} ctx @param {Topology} topo
 */
export async function clusterCapacity(ctx, topo) {
  const ceiling = topo.haproxy ? haproxyClientCeiling(ctx.haproxyMaxConn) : Infinity;
  const listed = topo.haproxy ? ctx.plan.haproxySteps : ctx.plan.directSteps;
  const counts = listed.filter((n) => n <= ceiling);
  if (counts.length < listed.length && !counts.includes(ceiling)) counts.push(ceiling);
  /** @type {Awaited<ReturnType<typeof clusterStep>>[]} */
  const steps = [];
  const run = async (/** @type {number} */ n) => {
    let s = await clusterStep(ctx, topo, n);
    if (ctx.plan.retryDisturbed && !s.pass && disturbed(s)) {
      ctx.log(`  ${topo.key} ${n}: failed while other work took CPU; measuring it again`);
      s = { ...(await clusterStep(ctx, topo, n)), retried: true };
    }
    steps.push(s);
    const c = s.cores;
    ctx.log(
      `  ${topo.key.padEnd(12)} ${String(n).padStart(6)} clients: p50 ${fmt(s.p50)} p99 ${fmt(s.p99)} ` +
        `p999 ${fmt(s.p999)} ms, ${s.errors} errors, cores parity ${c.parity.toFixed(2)} ` +
        `haproxy ${c.haproxy.toFixed(2)} redis ${c.redis.toFixed(2)} gen ${s.genCpuCores.toFixed(2)} ` +
        `other ${s.otherCpuCores.toFixed(2)}, load ${s.loadAverage[0]} ${s.pass ? 'pass' : 'FAIL'}`,
    );
    return s.pass;
  };
  const { capacity, limited } = await stepSearch(counts, ctx.plan.bisect, run);
  steps.sort((a, b) => a.clients - b.clients);
  return {
    key: topo.key,
    label: topo.label,
    topology: topo,
    capacity,
    /** Every step passed: it may hold more than the largest step tried. */
    limited,
    /** The largest step allowed (HAProxy's descriptors), when that is what stopped the search. */
    ceiling: topo.haproxy ? ceiling : null,
    steps,
  };
}
