/**
 * Starting the servers under test as child processes, and reading their CPU time and memory from
 * /proc. Every child is registered so that run.mjs can kill exactly the processes it started if
 * it is interrupted.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath, URL } from 'node:url';

const BASELINE = fileURLToPath(new URL('../baseline-server.mjs', import.meta.url));
const FLOOR = fileURLToPath(new URL('../floor-server.mjs', import.meta.url));
/** A server that has not exited this long after SIGTERM is killed. */
const STOP_TIMEOUT_MS = 15_000;
const CLK_TCK = 100; // Linux USER_HZ, as getconf CLK_TCK reports on every mainstream kernel

/** @type {Set<import('node:child_process').ChildProcess>} */
export const children = new Set();

/** Kills every child still running (used on interrupt). */
export function killAll() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}

/**
 * @typedef {'parity' | 'baseline' | 'floor' | 'redis' | 'haproxy'} ProcessName
 * @typedef {{
 *   name: ProcessName, pid: number, port: number, readyMs: number,
 *   output: string[], cpuSeconds(): number, rss(): number,
 *   stop(): Promise<number | string>, exited: Promise<number | string>,
 * }} RunningServer
 */

/**
 * Starts a registered child and resolves once it is ready: by default when it prints a JSON
 * `listening` record with its port; `ready` reads each stdout line for the port instead; `until`
 * (for a process that prints nothing useful) resolves with the port once it can be used.
 * @param {ProcessName} name
 * @param {string[]} argv node arguments (or the command's)
 * @param {{ command?: string, ready?: (line: string) => number | null, until?: () => Promise<number> }} [o]
 * @returns {Promise<RunningServer>}
 */
export async function startProcess(name, argv, o = {}) {
  const t0 = performance.now();
  const child = spawn(o.command ?? process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exited = once(child, 'exit').then(([code, signal]) => {
    children.delete(child);
    return /** @type {number | string} */ (code ?? signal);
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  /** @type {string[]} */
  const output = [];
  const lines = createInterface({
    input: /** @type {import('node:stream').Readable} */ (child.stdout),
  });
  const ready = new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      if (output.length < 1000) output.push(line);
      if (o.ready) {
        const port = o.ready(line);
        if (port !== null) resolve(port);
        return;
      }
      try {
        const record = JSON.parse(line);
        if (String(record.msg).startsWith('listening') && record.port) resolve(record.port);
      } catch {
        // not JSON: keep reading
      }
    });
    void exited.then((code) =>
      reject(new Error(`${name} exited (${code}) before listening: ${stderr}`)),
    );
    o.until?.().then(resolve, reject);
  });
  /** @type {number} */
  let port;
  try {
    port = /** @type {number} */ (await ready);
  } catch (err) {
    // Not ready (it exited, or `until` gave up): nothing of it may outlive the failed start.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  }
  const readyMs = performance.now() - t0;
  const pid = /** @type {number} */ (child.pid);
  return {
    name,
    pid,
    port,
    readyMs,
    output,
    exited,
    cpuSeconds: () => cpuSeconds(pid),
    rss: () => rss(pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/**
 * bin/server with its state and log in `dir`; with `store` (redis://…) its values live there and
 * it has no state file.
 * @param {{ root: string, dir: string, args?: string[], nodeArgs?: string[], statePath?: string, store?: string }} o
 */
export function startParity(o) {
  const statePath = o.store ? null : (o.statePath ?? join(o.dir, 'state.json'));
  const logPath = join(o.dir, 'messages.log');
  const argv = [
    ...(o.nodeArgs ?? []),
    join(o.root, 'bin/server'),
    '--port',
    '0',
    ...(statePath === null ? ['--store', /** @type {string} */ (o.store)] : ['--state', statePath]),
    '--log',
    logPath,
    ...(o.args ?? []),
  ];
  return startProcess('parity', argv).then((s) => ({ ...s, statePath, logPath }));
}

/** @param {{ nodeArgs?: string[] }} [o] */
export function startBaseline(o = {}) {
  return startProcess('baseline', [...(o.nodeArgs ?? []), BASELINE, '--port', '0']);
}

/**
 * bench/floor-server.mjs, its log (which is its journal too) in `dir`.
 * @param {{ dir: string, commit: 'async' | 'blocking' }} o
 */
export function startFloor(o) {
  const logPath = join(o.dir, 'messages.log');
  const argv = [FLOOR, '--port', '0', '--log', logPath, '--commit', o.commit];
  return startProcess('floor', argv).then((s) => ({ ...s, logPath }));
}

/** Where Debian's redis-server is, or null (the Redis rows are then skipped, with this reason). */
export function redisServerPath() {
  for (const path of ['/usr/bin/redis-server', '/usr/local/bin/redis-server'])
    if (existsSync(path)) return path;
  return null;
}

/** A free loopback port: bound on port 0, read, released (redis-server cannot take port 0). */
export async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * redis-server as the durable peer: every SET acknowledged after one fsync of its append-only
 * file (appendfsync always), no RDB snapshots, its files in `dir`, maxclients as Parity's.
 * @param {{ dir: string, maxClients: number }} o
 */
export async function startRedis(o) {
  const bin = redisServerPath();
  if (bin === null) throw new Error('redis-server is not installed');
  const port = await freePort();
  const argv = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    // Bound to loopback only; protected mode would refuse the generator's 127.0.0.x sources.
    '--protected-mode',
    'no',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--save',
    '',
    '--dir',
    o.dir,
    '--maxclients',
    String(o.maxClients),
    '--daemonize',
    'no',
    '--logfile',
    '',
  ];
  return startProcess('redis', argv, {
    command: bin,
    ready: (line) => (line.includes('Ready to accept connections') ? port : null),
  });
}

/** Bytes this process has caused to be written to storage, from /proc/<pid>/io (write_bytes). */
export function writeBytes(/** @type {number} */ pid) {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return Number(/write_bytes:\s+(\d+)/.exec(io)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** User + system CPU seconds of a process, from /proc/<pid>/stat. */
export function cpuSeconds(/** @type {number} */ pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Resident set size in bytes, from /proc/<pid>/status. */
export function rss(/** @type {number} */ pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb === undefined ? NaN : Number(kb) * 1024;
  } catch {
    return NaN;
  }
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
export function machineTicks() {
  const [, ...nums] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const v = nums.map(Number);
  const idle = v[3] + (v[4] ?? 0);
  const total = v.reduce((s, x) => s + x, 0);
  return { busy: total - idle, total };
}
