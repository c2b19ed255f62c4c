import t, { type Test } from 'tap';
import { renderHaproxyConfig } from '../src/cluster/haproxy-config.js';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SERVER_DEFAULTS } from '../src/limits.js';
import type { ProxyHeader } from '../src/net/proxy-protocol.js';
import { readProxyHeader } from '../src/net/proxy-socket.js';
import { LineDecoder } from '../src/protocol/decoder.js';
import { ROOT, tempDir, unusedPort, type TestLike } from './fixtures/server.js';
import {
  HAPROXY,
  HAPROXY_CONFIG as CONFIG,
  haproxyMissing,
  ROOT_USER,
  showStat,
} from './fixtures/haproxy.js';

const CONFIG_PATH = join(ROOT, 'deploy/haproxy.cfg');
const missing = haproxyMissing();

// deploy/haproxy.cfg is checked by the real HAProxy: `haproxy -c`, then a live run of the file
// with only its addresses changed, in front of small backends that read the PROXY header with
// readProxyHeader. CI (CI=true) installs haproxy and always runs these; on a machine without it,
// they are skipped with the reason, as test/deploy.ts does for its tools.

/** The arguments of every line with this keyword, in order (a keyword may repeat). */
const directive = (text: string, keyword: string) =>
  [...text.matchAll(new RegExp(`^\\s*${keyword}\\s+(.*)$`, 'gm'))].map((m) => m[1]!.trim());

/** A HAProxy duration (`330s`, `5m`, plain milliseconds) in milliseconds. */
function durationMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text);
  if (!m) throw new Error(`not a HAProxy duration: ${text}`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']!;
  return Number(m[1]) * unit;
}

const SERVERS = directive(CONFIG, 'server').map((args) => {
  const [name = '', address = ''] = args.split(/\s+/);
  return { name, address };
});

t.test('the file keeps the settings Parity depends on', async (t) => {
  t.same(directive(CONFIG, 'mode'), ['tcp'], 'bytes through, no HTTP parsing');
  t.same(directive(CONFIG, 'balance'), ['leastconn'], 'long connections: by count, not turns');
  t.ok(SERVERS.length >= 2, 'several servers');
  const perServer = directive(CONFIG, 'default-server')[0]?.split(/\s+/) ?? [];
  for (const option of ['send-proxy-v2', 'check', 'check-send-proxy']) {
    t.ok(perServer.includes(option), `default-server ${option}`);
  }
  t.ok(directive(CONFIG, 'option').includes('tcp-check'), 'checks speak the protocol');
  t.same(directive(CONFIG, 'tcp-check'), ['send PING\\r\\n', 'expect string PONG']);
  // The server, not the balancer, closes an idle client, with a BYE it can read.
  const timeout = Object.fromEntries(
    directive(CONFIG, 'timeout').map((a) => a.split(/\s+/) as [string, string]),
  );
  for (const side of ['client', 'server']) {
    t.ok(
      durationMs(timeout[side]!) > SERVER_DEFAULTS.idleTimeoutMs,
      `timeout ${side} outlasts the server's idle timeout`,
    );
  }
  const maxconn = Number(directive(CONFIG, 'maxconn')[0]);
  t.ok(maxconn >= SERVERS.length * SERVER_DEFAULTS.maxClients, 'room for every server to fill');
  const serverMaxconn = Number(perServer[perServer.indexOf('maxconn') + 1]);
  t.ok(serverMaxconn < SERVER_DEFAULTS.maxClients, 'HAProxy queues before a server is full');
});

t.test('haproxy -c accepts the file without a warning', { skip: missing }, async (t) => {
  // -dW turns every warning into a failure.
  const check = spawnSync(HAPROXY, ['-c', '-dW', '-f', CONFIG_PATH], { encoding: 'utf8' });
  t.equal(check.status, 0, check.stderr);
  t.match(check.stdout, /Configuration file is valid/);
});

// --- a live run ----------------------------------------------------------------------------------

type Connection = { header: ProxyHeader; after: Buffer };

type Backend = {
  name: string;
  port: number;
  /** Every connection whose header was read, with the bytes that followed it, once closed. */
  closed: Connection[];
  /** Headers that readProxyHeader refused: none expected. */
  refused: Error[];
  /** Resolves when a health check (a LOCAL connection) has been answered and closed. */
  nextCheck(): Promise<Connection>;
};

/**
 * A stand-in for a Parity server behind the balancer: reads the header with readProxyHeader, then
 * answers each line: PING with PONG, anything else with its name and the client's address.
 */
async function startBackend(t: TestLike, name: string): Promise<Backend> {
  const waiting: Array<(c: Connection) => void> = [];
  const backend: Backend = {
    name,
    port: 0,
    closed: [],
    refused: [],
    nextCheck: () => new Promise((resolve) => waiting.push(resolve)),
  };
  const server: Server = createServer((socket) => {
    socket.on('error', () => {}); // HAProxy resets its check connections after the PONG
    readProxyHeader(socket, { timeoutMs: 5_000 }).then(
      (header) => serve(socket, header),
      (error: Error) => {
        backend.refused.push(error);
        socket.destroy();
      },
    );
  });
  const serve = (socket: Socket, header: ProxyHeader) => {
    const decoder = new LineDecoder(1024);
    const after: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      after.push(chunk);
      for (const line of decoder.push(chunk)) {
        if (line === 'PING') socket.write('PONG\n');
        else if (header.kind === 'proxy') {
          const { source: s, destination: d } = header;
          socket.write(`${name} ${s.address} ${s.port} ${d.address} ${d.port}\n`);
        } else socket.write(`${name} ${header.kind}\n`);
      }
    });
    socket.on('close', () => {
      const connection = { header, after: Buffer.concat(after) };
      backend.closed.push(connection);
      if (header.kind === 'local') for (const resolve of waiting.splice(0)) resolve(connection);
    });
  };
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  backend.port = (server.address() as { port: number }).port;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return backend;
}

/** The file, with only its addresses moved to this test's loopback ports and temp folder. */
const deriveConfig = (frontendPort: number, backends: Backend[], statsPath: string) =>
  renderHaproxyConfig(CONFIG, {
    frontendPort,
    serverPorts: backends.map((b) => b.port),
    statsPath,
    root: ROOT_USER,
  });

type Balancer = { port: number; statsPath: string; stderr(): string };

async function startBalancer(t: TestLike, backends: Backend[]): Promise<Balancer> {
  const dir = tempDir(t);
  const port = await unusedPort();
  const statsPath = join(dir, 'admin.sock');
  const configPath = join(dir, 'haproxy.cfg');
  writeFileSync(configPath, deriveConfig(port, backends, statsPath));
  // -db: stay in the foreground. -n: the file's maxconn (30,000) makes HAProxy raise its descriptor
  // limit to ~60,000 or refuse to start, more than a test machine may grant; this test opens a
  // handful of connections, so cap it here and leave the file as written (haproxy -c checked it).
  const child = spawn(HAPROXY, ['-db', '-n', '1000', '-f', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = once(child, 'exit');
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  child.stdout.resume(); // its traffic log: one line per connection
  t.teardown(async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  // It binds the frontend before it starts checking: once every backend has answered a check,
  // clients can connect.
  const failed = exited.then(() => {
    throw new Error(`haproxy exited: ${stderr}`);
  });
  failed.catch(() => {}); // once running, its exit (teardown) is no failure
  await Promise.race([Promise.all(backends.map((b) => b.nextCheck())), failed]);
  return { port, statsPath, stderr: () => stderr };
}

/**
 * Resolves once HAProxy counts `n` current connections on each server. A client's close reaches
 * its count a moment after the client sees it, and no event of ours tells when: ask, one stats
 * round trip at a time.
 */
async function untilCurrent(path: string, n: (server: string) => number): Promise<void> {
  for (let tries = 0; ; tries++) {
    const rows = (await showStat(path)).filter((r) => SERVERS.some((s) => s.name === r.svname));
    if (rows.every((r) => Number(r.scur) === n(r.svname ?? ''))) return;
    if (tries === 1_000) throw new Error(`connections still open: ${JSON.stringify(rows)}`);
  }
}

/** A client through the balancer, and what the backend that answered read from the header. */
type Client = {
  socket: Socket;
  backend: string;
  source: { address: string; port: number };
  destination: { address: string; port: number };
};

/** A long-lived client through the balancer. */
async function connectClient(t: TestLike, port: number): Promise<Client> {
  const socket = connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const lines = createInterface({ input: socket });
  const reply = once(lines, 'line') as Promise<[string]>;
  socket.write('WHO\n');
  const [backend = '', ...endpoints] = (await reply)[0].split(' ');
  const [source = '', sourcePort, destination = '', destinationPort] = endpoints;
  return {
    socket,
    backend,
    source: { address: source, port: Number(sourcePort) },
    destination: { address: destination, port: Number(destinationPort) },
  };
}

t.test('the real HAProxy with this file', { skip: missing }, async (t: Test) => {
  const backends = await Promise.all(SERVERS.map((s) => startBackend(t, s.name)));
  const balancer = await startBalancer(t, backends);

  t.test('the derived file differs only in addresses', async (t) => {
    const derived = deriveConfig(1, backends, '/x').split('\n');
    const original = CONFIG.split('\n').filter(
      (line) => ROOT_USER || !/^\s*(chroot|user|group)\s/.test(line),
    );
    if (!ROOT_USER) t.comment('not root: chroot, user and group left out');
    t.equal(derived.length, original.length);
    const changed = derived.filter((line, i) => line !== original[i]);
    t.equal(changed.length, SERVERS.length + 2, 'bind, stats socket, each server');
    t.ok(
      changed.every((l) => /^\s*(bind|server|stats socket)\s/.test(l)),
      changed.join('\n'),
    );
  });

  t.test('health checks are PROXY v2 LOCAL, then PING; the servers are up', async (t) => {
    const checks = backends.flatMap((b) => b.closed.filter((c) => c.header.kind === 'local'));
    t.ok(checks.length >= backends.length, 'every backend was checked');
    for (const check of checks) {
      t.same(check.header, { kind: 'local', version: 2 });
      t.equal(check.after.toString('latin1'), 'PING\r\n', 'tcp-check send, escapes and all');
    }
    const servers = (await showStat(balancer.statsPath)).filter(
      (r) => r.pxname === 'parity' && SERVERS.some((s) => s.name === r.svname),
    );
    t.same(
      servers.map((r) => [r.svname, r.status, r.check_status]),
      SERVERS.map((s) => [s.name, 'UP', 'L7OK']),
      'HAProxy saw each PONG',
    );
    t.same(
      backends.flatMap((b) => b.refused.map((e) => e.message)),
      [],
      'every header HAProxy sent parsed',
    );
  });

  t.test('a client is reported with its own address and port', async (t) => {
    const client = await connectClient(t, balancer.port);
    t.ok(SERVERS.some((s) => s.name === client.backend));
    t.same(
      client.source,
      { address: client.socket.localAddress, port: client.socket.localPort },
      "the client's address and port, not the balancer's",
    );
    t.same(client.destination, { address: '127.0.0.1', port: balancer.port }, 'the frontend');
    client.socket.destroy();
  });

  t.test('leastconn: long connections spread, the emptiest server is filled first', async (t) => {
    const count = (clients: Client[]) =>
      SERVERS.map((s) => clients.filter((c) => c.backend === s.name).length);
    await untilCurrent(balancer.statsPath, () => 0); // the last test's client is gone
    const clients: Client[] = [];
    for (let i = 0; i < 2 * SERVERS.length; i++)
      clients.push(await connectClient(t, balancer.port));
    t.same(
      count(clients),
      SERVERS.map(() => 2),
      'two each',
    );
    // Empty the first server, wait until HAProxy has counted its connections gone, then connect
    // two more: both go to it (round robin would have sent them to the next servers in turn).
    const first = SERVERS[0]!.name;
    for (const c of clients.filter((c) => c.backend === first)) c.socket.destroy();
    await untilCurrent(balancer.statsPath, (server) => (server === first ? 0 : 2));
    const more = [await connectClient(t, balancer.port), await connectClient(t, balancer.port)];
    t.same(
      more.map((c) => c.backend),
      [first, first],
    );
  });

  t.teardown(() => {
    if (t.passing()) return;
    t.comment(`haproxy stderr:\n${balancer.stderr()}`);
  });
});

t.test('the derived file has one server line per server, however many', async (t) => {
  for (const ports of [[7001], [7001, 7002, 7003, 7004, 7005]]) {
    const derived = renderHaproxyConfig(CONFIG, {
      frontendPort: 7000,
      serverPorts: ports,
      statsPath: '/s',
      root: true,
    });
    const servers = derived.split('\n').filter((l) => /^\s*server\s/.test(l));
    t.same(
      servers.map((l) => l.trim().split(/\s+/).slice(1, 3)),
      ports.map((p, i) => [`parity${i + 1}`, `127.0.0.1:${p}`]),
    );
    t.match(derived, /\n\s*chroot /, 'as root, the file keeps chroot');
  }
});
