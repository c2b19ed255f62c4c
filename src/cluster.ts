import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderHaproxyConfig } from './cluster/haproxy-config.js';
import { untilServersUp } from './cluster/haproxy-stats.js';
import { freePort } from './cluster/ports.js';
import { REDIS_READY, redisServerArgs } from './cluster/redis-server.js';
import { clusterTable } from './cluster/table.js';
import { findClusterTools } from './cluster/tools.js';
import type { LogRecord } from './client/audit.js';
import { printLastValues } from './run/last-values.js';
import {
  firstSignal,
  killOnExit,
  startLabelled,
  stop,
  trackLastValue,
  type Launch,
  type Proc,
} from './run/processes.js';

/**
 * `npm run cluster`: redis-server, three Parity servers sharing it, HAProxy in front of them (with
 * deploy/haproxy.cfg, only its addresses changed) and three clients through HAProxy, on loopback
 * ports, in one terminal. Ctrl-C stops them in the reverse order, then prints each client's last
 * value and whether each server's message log follows the rules.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IDS = ['alice', 'bob', 'carol'];
/** Named as deploy/haproxy.cfg names its servers (parity1, parity2, …), and so in their logs. */
const SERVERS = ['parity1', 'parity2', 'parity3'];
const LABELS = ['redis', ...SERVERS, 'haproxy', ...IDS];
const WIDTH = Math.max(...LABELS.map((l) => l.length));
/**
 * HAProxy's -n: the file's maxconn (30,000) makes it ask for ~60,000 descriptors and refuse to
 * start where the hard limit is lower (20,000 is common); three clients need a handful.
 */
const HAPROXY_MAXCONN = 1_000;
/** How long HAProxy may take to see every server answer its check (a check every 2 s). */
const UP_TIMEOUT_MS = 20_000;
const UP_POLL_MS = 100;
/** Backstops: each is killed if it has not exited this long after its signal. */
const STOP_MS = { client: 3_000, haproxy: 5_000, server: 10_000, redis: 5_000 };

/** Every child, for the exit handler; in stages, for stopping in the reverse order. */
const all: Proc[] = [];
type Stage = { procs: Proc[]; signal: NodeJS.Signals; ms: number };
const stages: Stage[] = [];

function launch(name: string, command: string, args: string[], onLine?: Launch['onLine']) {
  const proc = startLabelled({
    name,
    index: LABELS.indexOf(name),
    width: WIDTH,
    command,
    args,
    cwd: ROOT,
    ...(onLine ? { onLine } : {}),
  });
  all.push(proc);
  return proc;
}

/** `value` once a line of `proc` gives it; null if `proc` exits or a signal comes first. */
function whenReady<T>(proc: Proc, value: Promise<T>, signalled: Promise<unknown>) {
  return Promise.race([value, proc.exited.then(() => null), signalled.then(() => null)]);
}

/** A promise and the function that resolves it (Promise.withResolvers is Node 22). */
function deferred<T>() {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The last started first, each stage's processes together; a stage is stopped once. */
async function stopAll(): Promise<void> {
  for (let stage = stages.pop(); stage !== undefined; stage = stages.pop()) {
    const { signal, ms } = stage;
    await Promise.all(stage.procs.map((p) => stop(p, signal, ms)));
  }
}

async function startRedis(redisServer: string, dir: string, signalled: Promise<unknown>) {
  const port = await freePort();
  const ready = deferred<true>();
  const args = ['--port', String(port), ...redisServerArgs(dir)];
  const proc = launch('redis', redisServer, args, (line) => {
    if (REDIS_READY.test(line)) ready.resolve(true);
  });
  stages.push({ procs: [proc], signal: 'SIGTERM', ms: STOP_MS.redis });
  return (await whenReady(proc, ready.promise, signalled)) ? { proc, port } : null;
}

async function startServer(
  name: string,
  store: string,
  log: string,
  stage: Stage,
  signalled: Promise<unknown>,
) {
  const ready = deferred<{ port: number; liveView: string }>();
  let port: number | null = null;
  const args = ['bin/server', '--port', '0', '--http-port', '0', '--store', store];
  args.push('--proxy-protocol', '--node-name', name, '--log', log);
  // The ready line ("listening on …", with the port), then the live view's address.
  const proc = launch(name, process.execPath, args, (_line, r: LogRecord | null) => {
    if (String(r?.['msg']).startsWith('listening') && typeof r?.['port'] === 'number')
      port = r['port'];
    if (port !== null && typeof r?.['liveView'] === 'string')
      ready.resolve({ port, liveView: r['liveView'] });
  });
  stage.procs.push(proc);
  const where = await whenReady(proc, ready.promise, signalled);
  return where && { name, log, proc, ...where };
}

async function startHaproxy(
  haproxy: string,
  dir: string,
  serverPorts: number[],
  signalled: Promise<unknown>,
) {
  const port = await freePort();
  const statsPath = join(dir, 'haproxy.sock');
  const config = join(dir, 'haproxy.cfg');
  const template = await readFile(join(ROOT, 'deploy/haproxy.cfg'), 'utf8');
  const root = process.getuid?.() === 0;
  await writeFile(
    config,
    renderHaproxyConfig(template, { frontendPort: port, serverPorts, statsPath, root }),
  );
  const proc = launch('haproxy', haproxy, ['-db', '-n', String(HAPROXY_MAXCONN), '-f', config]);
  stages.push({ procs: [proc], signal: 'SIGTERM', ms: STOP_MS.haproxy });
  const up = await untilServersUp(statsPath, 'parity', SERVERS, {
    timeoutMs: UP_TIMEOUT_MS,
    pollMs: UP_POLL_MS,
    gone: Promise.race([proc.exited, signalled]),
  });
  return up ? { proc, port, statsPath, config } : null;
}

/** The first SIGINT or SIGTERM, once it has come; after it, a second Ctrl-C exits at once. */
function watchSignals() {
  const watch = {
    signal: null as NodeJS.Signals | null,
    signalled: firstSignal('SIGINT', 'SIGTERM'),
  };
  void watch.signalled.then((s) => {
    watch.signal = s;
    // The exit handlers then kill what is still running.
    process.once('SIGINT', () => process.exit(130));
  });
  return watch;
}
type Signals = ReturnType<typeof watchSignals>;

/** Starts everything, in order; null if a part did not start (or a signal came first). */
async function startAll(tools: { redis: string; haproxy: string }, dir: string, s: Signals) {
  const failed = (what: string) => {
    process.stdout.write(`\n${s.signal ?? what}: stopping what started\n`);
    return null;
  };
  const redisDir = join(dir, 'redis');
  await mkdir(redisDir, { recursive: true, mode: 0o700 });
  const redis = await startRedis(tools.redis, redisDir, s.signalled);
  if (redis === null) return failed('redis-server did not start');
  const store = `redis://127.0.0.1:${redis.port}/0`;
  const serverStage: Stage = { procs: [], signal: 'SIGTERM', ms: STOP_MS.server };
  stages.push(serverStage);
  const started = SERVERS.map(async (name) => {
    const log = join(dir, `${name}.log`);
    // The logs are per run, as the demo's is; the values in Redis stay.
    await rm(log, { force: true });
    return startServer(name, store, log, serverStage, s.signalled);
  });
  const servers = (await Promise.all(started)).filter((server) => server !== null);
  if (servers.length < SERVERS.length) return failed('a server did not start');
  const ports = servers.map((server) => server.port);
  const haproxy = await startHaproxy(tools.haproxy, dir, ports, s.signalled);
  if (haproxy === null) return failed('HAProxy did not see every server up');
  const clients = IDS.map((id) => {
    const args = ['bin/client', '--id', id, '--port', String(haproxy.port)];
    const proc: Proc = launch(
      id,
      process.execPath,
      args,
      trackLastValue(() => proc),
    );
    return proc;
  });
  stages.push({ procs: clients, signal: 'SIGINT', ms: STOP_MS.client });
  return { redis: { ...redis, dir: redisDir }, servers, haproxy, clients };
}

async function run(
  tools: { redis: string; haproxy: string },
  dir: string,
  kept: boolean,
  s: Signals,
) {
  const started = await startAll(tools, dir, s);
  if (started === null) return s.signal === null ? 1 : 0;
  const { redis, servers, haproxy, clients } = started;
  const pid = (p: Proc) => p.child.pid!;
  process.stdout.write(
    clusterTable({
      dir,
      kept,
      redis: { pid: pid(redis.proc), ...redis },
      servers: servers.map((server) => ({ pid: pid(server.proc), ...server })),
      haproxy: { pid: pid(haproxy.proc), ...haproxy },
      clients: clients.map((c) => ({ name: c.name, pid: pid(c) })),
    }),
  );
  // Until Ctrl-C, or until a part other than a client stops by itself.
  const parts = [redis.proc, ...servers.map((server) => server.proc), haproxy.proc];
  const died = await Promise.race([
    s.signalled.then(() => null),
    ...parts.map((p) => p.exited.then(() => p.name)),
  ]);
  const why = died === null ? s.signal : `${died} exited`;
  process.stdout.write(`\n${why}: stopping the clients, HAProxy, the servers, then Redis\n`);
  await stopAll();
  const logs = servers.map((server) => ({ path: server.log, node: server.name }));
  await printLastValues(clients, logs, WIDTH);
  return died === null ? 0 : 1;
}

async function main(): Promise<number> {
  const tools = findClusterTools(process.env['PATH'] ?? '');
  if ('missing' in tools) {
    process.stderr.write(`${tools.missing}\n`);
    return 1;
  }
  const signals = watchSignals();
  const given = process.env['PARITY_CLUSTER_DIR'];
  const dir = given ? resolve(given) : await mkdtemp(join(tmpdir(), 'parity-cluster-'));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Should the script die (or a second Ctrl-C exit it), no child lives on, no scratch folder stays.
  killOnExit(all);
  process.on('exit', () => {
    if (!given) rmSync(dir, { recursive: true, force: true });
  });
  const found = { redis: tools.found['redis-server'], haproxy: tools.found.haproxy };
  try {
    return await run(found, dir, given !== undefined, signals);
  } finally {
    await stopAll();
    if (given) process.stdout.write(`\nkept ${dir}\n`);
    else {
      await rm(dir, { recursive: true, force: true });
      process.stdout.write(`\nremoved ${dir}\n`);
    }
  }
}

void main().then((code) => process.exit(code));
