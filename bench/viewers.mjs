#!/usr/bin/env node
/**
 * Issue 9, "watching must not change what is watched": the server's CPU and the spec p99 at N
 * clients with no viewer and with V viewers on the live view differ by at most 5%.
 *
 *   npm run build
 *   node bench/viewers.mjs [--clients 10000] [--viewers 5] [--seconds 20] [--rounds 2]
 *                          [--warmup 3] [--connect-timeout 120] [--idle-wait 30]
 *                          [--out bench/results/viewers.json] [--cpu-prof]
 *
 * Each round starts Parity once per condition (0 viewers, V viewers), runs the spec load, and for
 * V attaches V event streams to /events after the clients have connected and before the warm-up,
 * so they are there for the whole measuring window. The order alternates across rounds (0 V, V 0,
 * 0 V, ...: ABBA) so that drift in the machine's load falls on both conditions alike. The figures
 * compared are the medians over rounds of the server's CPU seconds in the window and the spec
 * p99. Before each run it waits up to --idle-wait seconds for the machine to be quiet, then records
 * `uptime`: on a shared machine that says how far to trust the figures. Spec clients start sending
 * as soon as they have connected, so on a machine too busy for the load the rest connect ever more
 * slowly; a run not connected within --connect-timeout fails the bench (partial results are kept).
 * With --cpu-prof each server writes a .cpuprofile next to --out (see bench/cpuprofile-top.mjs).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';
import { startLoad } from './lib/load.mjs';
import { killAll, machineTicks, startParity } from './lib/servers.mjs';
import { attachViewer } from './lib/viewers.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The bound on the relative difference of each figure. */
const TARGET = 0.05;
/** Spec clients per generator process, as bench/lib/scenarios.mjs has it. */
const CLIENTS_PER_PROC = 5_000;
/** --max-clients as in the main bench: the per-process file limit minus some for the rest. */
const MAX_CLIENTS = 19_900;
/** How long the server may take to say where its live view is after saying "listening". */
const LIVE_VIEW_WAIT_MS = 5_000;
/**
 * Below this share of all cores busy (a second's sample) the machine counts as quiet enough to
 * start a run. Each run waits up to --idle-wait for it; on a shared machine it may never come.
 */
const QUIET_BUSY = 0.25;

/**
 * @typedef {{ clients: number, viewers: number, seconds: number, warmup: number,
 *   connectTimeout: number, idleWait: number, profileDir: string | null }} Config
 */

process.once('SIGINT', () => {
  killAll();
  process.exit(130);
});
process.exitCode = await main(process.argv.slice(2));

async function main(/** @type {string[]} */ argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string', default: '10000' },
      viewers: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '3' },
      'connect-timeout': { type: 'string', default: '120' },
      'idle-wait': { type: 'string', default: '30' },
      out: { type: 'string', default: join(ROOT, 'bench/results/viewers.json') },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stderr.write(
      'usage: node bench/viewers.mjs [--clients N] [--viewers V] [--seconds S] [--rounds R]\n' +
        '         [--warmup S] [--connect-timeout S] [--idle-wait S] [--out FILE] [--cpu-prof]\n',
    );
    return 2;
  }
  const out = resolve(values.out);
  mkdirSync(dirname(out), { recursive: true });
  /** @type {Config} */
  const cfg = {
    clients: Number(values.clients),
    viewers: Number(values.viewers),
    seconds: Number(values.seconds),
    warmup: Number(values.warmup),
    connectTimeout: Number(values['connect-timeout']),
    idleWait: Number(values['idle-wait']),
    profileDir: values['cpu-prof'] ? dirname(out) : null,
  };
  const rounds = Number(values.rounds);
  const runs = [];
  /** @type {string | null} */
  let failed = null;
  for (let round = 1; round <= rounds && failed === null; round++) {
    const order = round % 2 === 1 ? [0, cfg.viewers] : [cfg.viewers, 0];
    for (const viewers of order) {
      let run;
      try {
        run = { round, ...(await measure({ ...cfg, viewers }, `r${round}v${viewers}`)) };
      } catch (err) {
        failed = err instanceof Error ? err.message : String(err);
        log(`round ${round}, ${viewers} viewers: FAILED: ${failed}`);
        break;
      }
      log(
        `round ${round}, ${viewers} viewers: server ${run.serverCpuSeconds.toFixed(2)} s CPU, ` +
          `p99 ${run.p99Ms} ms, ${run.errorCount} errors, load average ${run.loadAverageBefore.join(' ')}`,
      );
      runs.push(run);
    }
  }
  const summary = { ...summarize(cfg, rounds, runs), failed };
  writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  log(`written to ${out}`);
  return failed === null && runs.every((r) => r.errorCount === 0 && r.alive === cfg.clients)
    ? 0
    : 1;
}

/**
 * One server, one spec load, one measuring window, and `cfg.viewers` viewers throughout it.
 * @param {Config} cfg
 * @param {string} label
 */
async function measure(cfg, label) {
  const waitStart = Date.now();
  const busyBefore = await waitForQuiet(cfg.idleWait * 1000);
  const waitedS = (Date.now() - waitStart) / 1000;
  const uptime = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const loadAverageBefore = loadavg().map((x) => Math.round(x * 100) / 100);
  const dir = mkdtempSync(join(tmpdir(), `parity-viewers-${label}-`));
  const server = await startParity({
    root: ROOT,
    dir,
    nodeArgs: cfg.profileDir
      ? ['--cpu-prof', '--cpu-prof-dir', cfg.profileDir, '--cpu-prof-name', `${label}.cpuprofile`]
      : [],
    args: [
      '--max-clients',
      String(MAX_CLIENTS),
      // The generator spreads over a few 127.0.0.x addresses; the default 1,000 per address is
      // a limit for the open internet, not for this test.
      '--max-clients-per-address',
      String(MAX_CLIENTS),
      '--http-port',
      '0',
      '--http-max-viewers',
      String(Math.max(20, cfg.viewers)),
    ],
  });
  /** @type {import('./lib/viewers.mjs').Viewer[]} */
  const viewers = [];
  try {
    const events = `${await liveViewUrl(server)}/events`;
    const procs = Math.ceil(cfg.clients / CLIENTS_PER_PROC);
    const load = startLoad({
      mode: 'spec',
      port: server.port,
      conns: cfg.clients,
      procs,
      srcAddrs: 2 * procs,
      idPrefix: label,
    });
    try {
      // Connected clients already send their requests; on a machine too busy for the server to
      // keep up, the rest connect ever more slowly. A run that cannot connect fails, not hangs.
      const connected = await Promise.race([
        load.connected,
        sleep(cfg.connectTimeout * 1000, undefined, { ref: false }).then(() => {
          throw new Error(
            `${label}: ${cfg.clients} clients not connected within ${cfg.connectTimeout} s ` +
              `(server has ${server.cpuSeconds()} CPU s, load average ${loadavg().join(' ')})`,
          );
        }),
      ]);
      for (let i = 0; i < cfg.viewers; i++) viewers.push(await attachViewer(events));
      load.go();
      await sleep(cfg.warmup * 1000);
      const cpu0 = server.cpuSeconds();
      const m0 = machineTicks();
      const self0 = process.cpuUsage();
      const updates0 = viewers.map((v) => v.updates);
      load.mark();
      await sleep(cfg.seconds * 1000);
      const cpu1 = server.cpuSeconds();
      const m1 = machineTicks();
      const self = process.cpuUsage(self0);
      const updates = viewers.map((v, i) => v.updates - /** @type {number} */ (updates0[i]));
      const result = await load.stop();
      const windowS = result.windowMs / 1000;
      const serverCpuSeconds = Math.round((cpu1 - cpu0) * 100) / 100;
      const machineBusy = (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total);
      const selfCores = (self.user + self.system) / 1e6 / windowS;
      return {
        viewers: cfg.viewers,
        uptime,
        loadAverageBefore,
        /** The machine's busy share just before the run, after waiting waitedS for it to fall. */
        busyBefore: round3(busyBefore),
        waitedS: round3(waitedS),
        serverCpuSeconds,
        serverCpuCores: round3(serverCpuSeconds / windowS),
        p50Ms: result.latencyMs.p50,
        p99Ms: result.latencyMs.p99,
        p999Ms: result.latencyMs.p999,
        repliesPerSec: Math.round(result.repliesPerSec),
        errorCount: result.errorCount,
        errors: result.errors,
        alive: result.alive,
        connect: connected,
        windowS: round3(windowS),
        genCpuCores: round3(result.genCpuCores),
        /** The viewers' reading, in this process: CPU the server did not spend but the machine did. */
        viewerProcCpuCores: round3(selfCores),
        machineBusy: round3(machineBusy),
        /** Cores busy with neither the server, the generator nor the viewers: other agents' work. */
        otherCpuCores: round3(
          Math.max(
            0,
            machineBusy * cpus().length -
              serverCpuSeconds / windowS -
              result.genCpuCores -
              selfCores,
          ),
        ),
        viewerUpdates: viewers.map((v, i) => ({
          inWindow: updates[i],
          total: v.updates,
          bytes: v.bytes,
          error: v.error,
        })),
        serverRss: server.rss(),
      };
    } finally {
      for (const v of viewers) v.close();
      await load.exit();
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Waits (up to `maxMs`) for a second in which the machine is below QUIET_BUSY; returns the busy
 * share last seen.
 */
async function waitForQuiet(/** @type {number} */ maxMs) {
  const until = Date.now() + maxMs;
  for (;;) {
    const a = machineTicks();
    await sleep(1_000);
    const b = machineTicks();
    const busy = (b.busy - a.busy) / Math.max(1, b.total - a.total);
    if (busy < QUIET_BUSY || Date.now() >= until) return busy;
  }
}

/**
 * The live view's address, from the console line the server prints right after "listening" (the
 * server is asked for port 0, so only it knows the port). That line follows at once; the output
 * array fills as it is read, so it is looked at again every few milliseconds.
 * @param {{ output: string[] }} server
 */
async function liveViewUrl(server) {
  for (let waited = 0; waited < LIVE_VIEW_WAIT_MS; waited += 20) {
    for (const line of server.output) {
      try {
        const url = JSON.parse(line).liveView;
        if (typeof url === 'string') return url.replace(/\/$/, '');
      } catch {
        // not JSON
      }
    }
    await sleep(20);
  }
  throw new Error(`the server named no live view: ${server.output.join('\n')}`);
}

/**
 * @param {Config} cfg
 * @param {number} rounds
 * @param {Array<Awaited<ReturnType<typeof measure>> & { round: number }>} runs
 */
function summarize(cfg, rounds, runs) {
  const of = (/** @type {number} */ viewers) => runs.filter((r) => r.viewers === viewers);
  const figures = (/** @type {number} */ viewers) => ({
    serverCpuSeconds: median(of(viewers).map((r) => r.serverCpuSeconds)),
    p99Ms: median(of(viewers).map((r) => /** @type {number} */ (r.p99Ms))),
  });
  const without = figures(0);
  const withViewers = figures(cfg.viewers);
  const diff = (/** @type {'serverCpuSeconds' | 'p99Ms'} */ key) =>
    Math.round(((withViewers[key] - without[key]) / without[key]) * 1000) / 10;
  const difference = { serverCpuPct: diff('serverCpuSeconds'), p99Pct: diff('p99Ms') };
  return {
    requirement: `server CPU and spec p99 at ${cfg.clients} clients, 0 vs ${cfg.viewers} viewers, differ by at most ${TARGET * 100}%`,
    config: { ...cfg, rounds, order: 'ABBA (0 V, V 0, ...)', cores: cpus().length },
    table: runs.map((r) => ({
      round: r.round,
      viewers: r.viewers,
      serverCpuSeconds: r.serverCpuSeconds,
      p99Ms: r.p99Ms,
      errors: r.errorCount,
      updatesPerViewer: r.viewerUpdates.map((v) => v.inWindow),
      loadAverageBefore: r.loadAverageBefore,
      otherCpuCores: r.otherCpuCores,
    })),
    median: { 0: without, [cfg.viewers]: withViewers },
    differencePct: difference,
    pass: {
      serverCpu: Math.abs(difference.serverCpuPct) <= TARGET * 100,
      p99: Math.abs(difference.p99Pct) <= TARGET * 100,
    },
    runs,
  };
}

function median(/** @type {number[]} */ xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1
    ? /** @type {number} */ (s[mid])
    : /** @type {number} */ (s[mid - 1] + /** @type {number} */ (s[mid])) / 2;
}

function round3(/** @type {number} */ x) {
  return Math.round(x * 1000) / 1000;
}

function log(/** @type {string} */ line) {
  process.stderr.write(`${line}\n`);
}
