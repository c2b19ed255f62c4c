/**
 * The coordinator side of the load generator: forks loadgen.mjs workers, splits the connections
 * between them (and between 127.0.0.x source addresses, so no process runs out of files and no
 * address runs out of ports), steps them through connect → go → mark → stop → exit together, and
 * merges what they measured.
 */
import { fork } from 'node:child_process';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath, URL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Histogram } from './hist.mjs';
import { children } from './servers.mjs';

/** Workers still running this long after `exit` are killed. */
const EXIT_TIMEOUT_MS = 5_000;
const LOADGEN = fileURLToPath(new URL('../loadgen.mjs', import.meta.url));

/**
 * @typedef {{
 *   mode: 'flood' | 'spec' | 'idle', host?: string, port: number, conns: number,
 *   inflight?: number, procs?: number, srcAddrs?: number, idPrefix?: string,
 *   connectConcurrency?: number, drainMs?: number, protocol?: 'parity' | 'redis',
 * }} LoadConfig
 */

/** Source addresses 127.0.0.2 to 127.0.0.251, handed out in turn. */
const ADDRESSES = 250;
let nextAddress = Math.floor(Math.random() * ADDRESSES);
const address = (/** @type {number} */ i) => `127.0.0.${2 + (i % ADDRESSES)}`;

/** Splits n into k nearly equal parts. */
const split = (/** @type {number} */ n, /** @type {number} */ k) =>
  Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));

/** @param {LoadConfig} cfg */
export function startLoad(cfg) {
  const procs = Math.max(1, Math.min(cfg.procs ?? 1, cfg.conns));
  const srcAddrs = Math.max(1, cfg.srcAddrs ?? 1);
  const idPrefix = cfg.idPrefix ?? `${cfg.mode}${Date.now().toString(36)}`;
  const base = nextAddress;
  nextAddress = (nextAddress + srcAddrs) % ADDRESSES;
  const workers = split(cfg.conns, procs).map((conns, w) => {
    const child = fork(LOADGEN, ['--worker'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [],
    });
    /** @type {Map<string, { promise: Promise<any>, resolve: (msg: any) => void }>} */
    const inbox = new Map();
    const slot = (/** @type {string} */ type) => {
      let entry = inbox.get(type);
      if (!entry) {
        /** @type {(msg: any) => void} */
        let resolve = () => {};
        const promise = new Promise((res) => (resolve = res));
        entry = { promise, resolve };
        inbox.set(type, entry);
      }
      return entry;
    };
    children.add(child);
    const exited = new Promise((resolve) => child.once('exit', resolve)).finally(() =>
      children.delete(child),
    );
    child.on('message', (/** @type {{ type: string }} */ msg) => slot(msg.type).resolve(msg));
    // Worker w takes addresses w, w + procs, ... so each process spreads over several. Each run
    // moves on to fresh addresses, away from ports a previous run may have left in TIME_WAIT.
    const localAddresses = [];
    for (let a = w % srcAddrs; a < srcAddrs; a += procs) localAddresses.push(address(base + a));
    if (localAddresses.length === 0) localAddresses.push(address(base + (w % srcAddrs)));
    child.send({
      type: 'init',
      cfg: {
        mode: cfg.mode,
        protocol: cfg.protocol ?? 'parity',
        host: cfg.host ?? '127.0.0.1',
        port: cfg.port,
        conns,
        inflight: cfg.inflight ?? 1,
        localAddresses,
        idPrefix: `${idPrefix}w${w}`,
        connectConcurrency: cfg.connectConcurrency ?? 64,
        drainMs: cfg.drainMs ?? 5_000,
      },
    });
    /** @param {string} type */
    const next = (type) =>
      Promise.race([
        slot(type).promise,
        exited.then((code) => Promise.reject(new Error(`load worker ${w} exited (${code})`))),
      ]);
    return { child, next, exited };
  });
  const broadcast = (/** @type {string} */ type) => {
    for (const w of workers) if (w.child.connected) w.child.send({ type });
  };

  return {
    procs,
    /** Resolves once every connection has been answered HELLO (or failed). */
    connected: Promise.all(workers.map((w) => w.next('connected'))).then((all) => ({
      ok: all.reduce((s, m) => s + m.ok, 0),
      failed: all.reduce((s, m) => s + m.failed, 0),
      ms: Math.max(...all.map((m) => m.ms)),
    })),
    go: () => broadcast('go'),
    mark: () => broadcast('mark'),
    /** Ends the measuring window; resolves with the merged measurements. */
    async stop() {
      broadcast('stop');
      return merge(await Promise.all(workers.map((w) => w.next('result'))));
    },
    /** Closes every connection and ends the workers (killing any that linger). */
    async exit() {
      broadcast('exit');
      const timer = setTimeout(() => {
        for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
      }, EXIT_TIMEOUT_MS);
      await Promise.all(workers.map((w) => w.exited));
      clearTimeout(timer);
    },
    kill() {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    },
  };
}

/** @param {any[]} results */
function merge(results) {
  const hist = new Histogram();
  /** @type {Record<string, number>} */
  const errors = {};
  for (const r of results) {
    hist.add(Histogram.fromJSON(r.hist));
    for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  }
  const windowMs = Math.max(...results.map((r) => r.windowMs));
  const sum = (/** @type {string} */ key) => results.reduce((s, r) => s + r[key], 0);
  return {
    windowMs,
    repliesPerSec: (sum('windowReplies') / windowMs) * 1000,
    latencyMs: hist.summary(),
    errors,
    errorCount: Object.values(errors).reduce((s, v) => s + v, 0),
    sent: sum('sent'),
    answered: sum('answered'),
    lateTicks: sum('lateTicks'),
    alive: sum('alive'),
    /** Generator CPU over the window, in cores (1 = one core busy), all processes together. */
    genCpuCores: sum('cpuMs') / windowMs,
    /** The busiest generator process; near 1 means the generator may be the bottleneck. */
    genCpuMaxProc: Math.max(...results.map((r) => r.cpuMs / r.windowMs)),
    genLagP99Ms: Math.max(...results.map((r) => r.lagP99Ms)),
    genRss: sum('rss'),
  };
}

/** Thrown by runLoad when not every connection was answered within `connectTimeoutMs`. */
export class ConnectTimeout extends Error {}

/**
 * One whole measurement: connect, optional warm-up, a measuring window, stop, exit. `onWindow`
 * hooks let the caller sample the server around the window. With `connectTimeoutMs`, a load
 * whose connections are not all answered by then fails (ConnectTimeout) instead of waiting on:
 * spec clients send as soon as they are connected, so on a machine too busy for the load the rest
 * connect ever more slowly.
 * @param {LoadConfig & { warmupMs?: number, durationMs: number, connectTimeoutMs?: number }} cfg
 * @param {{ atMark?: () => void, atStop?: () => void }} [hooks]
 */
export async function runLoad(cfg, hooks = {}) {
  const load = startLoad(cfg);
  try {
    const ms = cfg.connectTimeoutMs;
    const connected = await (ms === undefined
      ? load.connected
      : Promise.race([
          load.connected,
          sleep(ms, undefined, { ref: false }).then(() => {
            throw new ConnectTimeout(
              `${cfg.conns} connections not all answered within ${ms / 1000} s`,
            );
          }),
        ]));
    load.go();
    await sleep(cfg.warmupMs ?? 1_000);
    hooks.atMark?.();
    load.mark();
    await sleep(cfg.durationMs);
    hooks.atStop?.();
    const result = await load.stop();
    return { ...result, connect: connected, procs: load.procs };
  } finally {
    await load.exit();
  }
}
