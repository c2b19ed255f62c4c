/**
 * HAProxy for the cluster bench: deploy/haproxy.cfg with only its addresses changed (by the
 * renderHaproxyConfig that test/haproxy.ts uses too, from the measured build's dist/), run in the
 * foreground, and read through its stats socket.
 */
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { freePort, startProcess } from './servers.mjs';

/** How long HAProxy may take to see every server pass a health check (one every 2 s each). */
const CHECKS_TIMEOUT_MS = 15_000;
/**
 * Descriptors HAProxy needs beyond two per connection: listeners, health checks, the stats
 * socket, stdio, its pollers. It asked for 2 × maxconn + 29 with one server; this leaves room.
 */
const HAPROXY_FD_HEADROOM = 100;

/** Where Debian's haproxy is (not on a normal user's PATH), or null. */
export function haproxyPath() {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'])
    if (dir && existsSync(join(dir, 'haproxy'))) return join(dir, 'haproxy');
  return null;
}

/**
 * The connections HAProxy can hold here: two descriptors each (client side, server side) within
 * the hard open-file limit it inherits. deploy/haproxy.cfg asks for maxconn 30000 (60,000
 * descriptors); HAProxy refuses to start when it cannot raise its limit that far ("Cannot raise FD
 * limit to 60029"), so the bench passes this as `-n`, which overrides the file's global maxconn.
 */
export function haproxyMaxConn() {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const hard = Number(/Max open files\s+\d+\s+(\d+)/.exec(limits)?.[1] ?? 1024);
  return Math.floor((hard - HAPROXY_FD_HEADROOM) / 2);
}

/**
 * HAProxy in front of `serverPorts`, its config and stats socket in `dir`. Resolves once every
 * server has passed a health check (until then a client may be sent to one not yet known up).
 * @param {{ root: string, dir: string, serverPorts: number[], maxConn: number }} o
 */
export async function startHaproxy(o) {
  const bin = haproxyPath();
  if (bin === null) throw new Error('haproxy is not installed');
  const { renderHaproxyConfig } = await import(
    pathToFileURL(join(o.root, 'dist/cluster/haproxy-config.js')).href
  );
  const port = await freePort();
  const statsPath = join(o.dir, 'admin.sock');
  const configPath = join(o.dir, 'haproxy.cfg');
  const template = readFileSync(join(o.root, 'deploy/haproxy.cfg'), 'utf8');
  writeFileSync(
    configPath,
    renderHaproxyConfig(template, {
      frontendPort: port,
      serverPorts: o.serverPorts,
      statsPath,
      root: process.getuid?.() === 0,
    }),
  );
  // -db: foreground, no daemon. Its traffic log (one line per connection, at close) is on stdout,
  // which startProcess reads and drops past its first thousand lines.
  const haproxy = await startProcess(
    'haproxy',
    ['-db', '-n', String(o.maxConn), '-f', configPath],
    {
      command: bin,
      ready: () => null,
      until: async () => {
        await untilChecked(statsPath, o.serverPorts.length);
        return port;
      },
    },
  );
  return { ...haproxy, statsPath, configPath };
}

/** One command on HAProxy's stats socket; it answers and closes. */
export async function statsCommand(/** @type {string} */ path, /** @type {string} */ command) {
  const socket = connect(path);
  socket.on('error', () => {}); // surfaces below, as the iteration's error
  await once(socket, 'connect');
  socket.write(`${command}\n`);
  let out = '';
  for await (const chunk of socket) out += String(chunk);
  return out;
}

/** `show stat` as one record per proxy and server, by column name. */
export async function showStat(/** @type {string} */ path) {
  const [head = '', ...rows] = (await statsCommand(path, 'show stat')).trim().split('\n');
  const columns = head.replace(/^# /, '').split(',');
  return rows.map((row) => {
    const cells = row.split(',');
    return Object.fromEntries(columns.map((c, i) => [c, cells[i] ?? '']));
  });
}

/**
 * Waits until `n` servers are UP with a passed check (L7OK: they answered PING with PONG). The
 * socket exists only once HAProxy has read its config, and nothing signals a check: ask again.
 */
async function untilChecked(/** @type {string} */ statsPath, /** @type {number} */ n) {
  const until = Date.now() + CHECKS_TIMEOUT_MS;
  let last = 'no stats socket yet';
  while (Date.now() < until) {
    try {
      const servers = (await showStat(statsPath)).filter(
        (r) => r.svname !== 'FRONTEND' && r.svname !== 'BACKEND',
      );
      if (
        servers.length === n &&
        servers.every((r) => r.status === 'UP' && r.check_status === 'L7OK')
      )
        return;
      last = servers.map((r) => `${r.svname} ${r.status} ${r.check_status}`).join(', ');
    } catch (err) {
      last = /** @type {Error} */ (err).message;
    }
    await sleep(100);
  }
  throw new Error(`haproxy: servers not all up after ${CHECKS_TIMEOUT_MS / 1000} s: ${last}`);
}
