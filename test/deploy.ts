import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SERVER_DEFAULTS } from '../src/limits.js';
import { startChild } from './fixtures/child.js';
import { ROOT, tempDir } from './fixtures/server.js';

// deploy/ is checked by the real tools: systemd-analyze for the unit, logrotate for its config.
// CI (CI=true) installs both and always runs these; on a newcomer's machine without one, its
// tests are skipped with the reason, as the netcat test is.

const UNIT = readFileSync(join(ROOT, 'deploy/parity.service'), 'utf8');
const LOGROTATE = readFileSync(join(ROOT, 'deploy/logrotate'), 'utf8');

const missing = (tool: string) =>
  spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0 && process.env.CI !== 'true'
    ? `${tool} is not installed (CI installs it)`
    : false;

/** The values of a unit setting, in order (a key may repeat). */
const setting = (key: string) =>
  [...UNIT.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);

t.test('the unit keeps the settings the server depends on', async (t) => {
  t.same(setting('ExecStart').length, 1);
  t.match(
    setting('ExecStart')[0],
    /^\/usr\/bin\/parity-server --state \/var\/lib\/parity\/\S+ --log \/var\/log\/parity\/\S+$/,
  );
  t.same(setting('StateDirectory'), ['parity']);
  t.same(setting('LogsDirectory'), ['parity']);
  t.same(setting('ExecReload'), ['/bin/kill -HUP $MAINPID'], 'reload reopens the log');
  // The state lock is an abstract unix socket: without AF_UNIX the server cannot start.
  t.same(setting('RestrictAddressFamilies'), ['AF_INET AF_INET6 AF_UNIX'], 'TCP and the lock');
  t.same(setting('MemoryDenyWriteExecute'), [], "not set: V8's JIT needs W+X pages");
  t.same(setting('PrivateNetwork'), [], 'not set: it would hide the port and the lock');
  const stopS = Number(setting('TimeoutStopSec')[0]);
  t.ok(stopS * 1000 > 2 * SERVER_DEFAULTS.shutdownTimeoutMs, 'systemd waits out the shutdown');
  const nofile = Number(setting('LimitNOFILE')[0]);
  t.ok(nofile > SERVER_DEFAULTS.maxClients, 'room for --max-clients');
});

t.test('the unit command line starts this server', async (t) => {
  // The unit's own flags and environment, only with the paths moved to a temp folder and port 0.
  const dir = tempDir(t);
  const args = setting('ExecStart')[0]!
    .split(' ')
    .slice(1)
    .map((a) => a.replace(/^\/var\/(lib|log)\/parity/, dir));
  for (const [name, value] of setting('Environment').map((e) => e.split('=')))
    process.env[name!] = value;
  t.teardown(() => {
    for (const [name] of setting('Environment').map((e) => e.split('='))) delete process.env[name!];
  });
  const server = await startChild(t, args);
  t.equal((await server.kill('SIGTERM')).code, 0);
  t.ok(existsSync(join(dir, 'messages.log')), 'the log is where the unit says');
});

t.test(
  'systemd-analyze verify accepts the unit',
  { skip: missing('systemd-analyze') },
  async (t) => {
    // verify checks that ExecStart exists: point it at this checkout's bin/server, which does.
    const dir = tempDir(t);
    const unit = join(dir, 'parity.service');
    writeFileSync(
      unit,
      UNIT.replace('ExecStart=/usr/bin/parity-server', `ExecStart=${ROOT}/bin/server`),
    );
    const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    t.equal(verify.status, 0, verify.stderr);
    t.equal(verify.stderr + verify.stdout, '', 'no warnings');
    // The sandbox stays tight: systemd's exposure score (0 best, 10 worst) at most 2.0, which
    // --threshold takes in tenths.
    const security = spawnSync(
      'systemd-analyze',
      ['security', '--offline=true', '--threshold=20', '--no-pager', unit],
      { encoding: 'utf8' },
    );
    t.equal(
      security.status,
      0,
      security.stdout
        .split('\n')
        .filter((l) => l.includes('✗'))
        .join('\n'),
    );
    t.match(security.stdout, /Overall exposure level for parity\.service: [01]\.\d/);
  },
);

t.test('logrotate config', { skip: missing('logrotate') }, async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o700); // logrotate refuses a folder others can write
  const log = join(dir, 'messages.log');
  const marker = join(dir, 'reloaded');
  /** A copy of the config (given as text) for the log in `dir`. */
  const config = (text: string) => {
    const path = join(dir, 'parity.conf');
    // logrotate ignores a config that group or others can write (a umask of 002 would do that).
    writeFileSync(path, text.replaceAll('/var/log/parity/', `${dir}/`), { mode: 0o600 });
    return path;
  };
  const logrotate = (...args: string[]) =>
    spawnSync('logrotate', ['--state', join(dir, 'status'), ...args], { encoding: 'utf8' });

  t.test('never copytruncate: the server reopens on SIGHUP', async (t) => {
    t.notMatch(LOGROTATE, /^\s*copytruncate/m);
    t.match(LOGROTATE, /postrotate\s+[^\n]*\n?\s*systemctl try-reload-or-restart parity\.service/);
  });

  t.test('logrotate -d parses it without errors', async (t) => {
    writeFileSync(log, 'a line\n');
    const debug = logrotate('-d', config(LOGROTATE));
    t.equal(debug.status, 0, debug.stderr);
    t.notMatch(debug.stderr + debug.stdout, /error/i);
    t.match(debug.stderr, new RegExp(`considering log ${log}`));
  });

  t.test('logrotate -f rotates, recreates 0600 and runs postrotate', async (t) => {
    // The same config, with a harmless postrotate that leaves a mark.
    const path = config(
      LOGROTATE.replace('systemctl try-reload-or-restart parity.service', `touch ${marker}`),
    );
    writeFileSync(log, 'first\n');
    let run = logrotate('-f', path);
    t.equal(run.status, 0, run.stderr);
    t.equal(readFileSync(`${log}.1`, 'utf8'), 'first\n', 'delaycompress: .1 stays plain');
    t.equal(statSync(log).size, 0, 'a new, empty log');
    t.equal(statSync(log).mode & 0o777, 0o600, 'created 0600');
    t.ok(existsSync(marker), 'postrotate ran');

    writeFileSync(log, 'second\n');
    run = logrotate('-f', path);
    t.equal(run.status, 0, run.stderr);
    t.equal(readFileSync(`${log}.1`, 'utf8'), 'second\n');
    t.equal(gunzipSync(readFileSync(`${log}.2.gz`)).toString(), 'first\n', 'then compressed');
  });
});
