import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { startFailure } from '../src/cli/server.js';
import { startOptions } from '../src/cli/start-options.js';
import { dataPaths, parseServerArgs } from '../src/cli/server-options.js';
import { StateFileError } from '../src/store/state-file.js';
import { startChild } from './fixtures/child.js';
import { LineClient, ROOT, SERVER_BIN, tempDir } from './fixtures/server.js';

// Each test starts real servers; on a loaded 2-core machine a start takes 1-2 s.
t.setTimeout(90_000);

/** The parsed server options, or the one-line reason they were refused. */
async function parse(argv: string[], env: Record<string, string> = {}) {
  const r = await parseServerArgs(argv, env);
  if (r.kind === 'error') return r.message;
  if (r.kind !== 'run') return r.kind;
  return r.values;
}

t.test('every flag checks its range and shows what was typed', async (t) => {
  const bad: Array<[string[], Record<string, string>, string]> = [
    [['--port', 'abc'], {}, 'invalid --port abc: use an integer 0-65535'],
    [['--port', ''], {}, 'invalid --port "": use an integer 0-65535'],
    [['--port', '0x1f'], {}, 'invalid --port 0x1f: use an integer 0-65535'],
    [['--port', '-1'], {}, 'invalid --port -1: use an integer 0-65535'],
    [['--max-clients', '0'], {}, 'invalid --max-clients 0: use an integer 1-9007199254740991'],
    [['--max-ids', '1e6'], {}, 'invalid --max-ids 1e6: use an integer 1-9007199254740991'],
    [['--log-keep', '0'], {}, 'invalid --log-keep 0: use an integer 1-9007199254740991'],
    [
      ['--log-max-bytes', '-5'],
      {},
      'invalid --log-max-bytes -5: use an integer 0-9007199254740991',
    ],
    // Node clamps a timer past 2^31-1 ms to 1 ms: a 35-day drain timeout would drop peers at once.
    [
      ['--commit-delay-ms', '3000000000'],
      {},
      'invalid --commit-delay-ms 3000000000: use an integer 0-2147483647',
    ],
    ...['drain-timeout-ms', 'idle-timeout-ms', 'log-flush-ms', 'shutdown-timeout-ms'].map(
      (name): [string[], Record<string, string>, string] => [
        [`--${name}`, '3000000000'],
        {},
        `invalid --${name} 3000000000: use an integer 1-2147483647`,
      ],
    ),
    [
      [],
      { PARITY_IDLE_TIMEOUT_MS: '2147483648' },
      'invalid PARITY_IDLE_TIMEOUT_MS=2147483648: use an integer 1-2147483647',
    ],
    [['--state', 'a', '--state', 'b'], {}, '--state given more than once'],
    [['--port', '1', '--port=2'], {}, '--port given more than once'],
    [['--repair', '--no-repair'], {}, '--repair given more than once'],
    [['--repair=yes'], {}, 'invalid --repair=yes: use 1, 0, true or false'],
    [[], { PARITY_REPAIR: 'yes' }, 'invalid PARITY_REPAIR=yes: use 1, 0, true or false'],
    [['--colour'], {}, 'Unknown argument: colour'],
  ];
  for (const [argv, env, message] of bad) t.equal(await parse(argv, env), message, argv.join(' '));
  const ok = await parse(['--drain-timeout-ms', '2147483647', '--log-max-bytes', '0']);
  t.match(ok, { 'drain-timeout-ms': 2147483647, 'log-max-bytes': 0 });
});

t.test('the new flags and their PARITY_* variables reach the values', async (t) => {
  t.match(await parse([]), {
    'max-ids': 1_000_000,
    'max-clients-per-address': 1_000,
    'log-buffer-bytes': 16 * 1024 * 1024,
    'log-max-bytes': 1024 * 1024 * 1024,
    'log-keep': 5,
    'commit-delay-ms': 3,
    repair: false,
  });
  t.match(await parse([], { PARITY_COMMIT_DELAY_MS: '0' }), { 'commit-delay-ms': 0 }, 'off');
  t.match(
    await parse(['--max-ids', '7', '--log-keep', '2'], {
      PARITY_MAX_CLIENTS_PER_ADDRESS: '3',
      PARITY_LOG_BUFFER_BYTES: '4096',
      PARITY_LOG_MAX_BYTES: '0',
      PARITY_LOG_KEEP: '9',
    }),
    {
      'max-ids': 7,
      'max-clients-per-address': 3,
      'log-buffer-bytes': 4096,
      'log-max-bytes': 0,
      'log-keep': 2,
    },
    'the command line wins over the environment',
  );
});

t.test('each flag reaches the options the server starts with', async (t) => {
  const parsed = await parseServerArgs(
    [
      ...['--host', '127.0.0.2', '--port', '7001', '--repair'],
      ...['--log-flush-ms', '11', '--log-buffer-bytes', '12', '--log-max-bytes', '13'],
      ...['--log-keep', '14', '--commit-delay-ms', '15', '--max-line-bytes', '16'],
      ...['--idle-timeout-ms', '17', '--max-clients-per-address', '18', '--max-ids', '19'],
      ...['--output-cap-bytes', '20', '--drain-timeout-ms', '21', '--shutdown-timeout-ms', '22'],
      ...['--proxy-protocol', '--node-name', 'n1', '--http-port', '7002'],
    ],
    {},
  );
  if (parsed.kind !== 'run') throw new Error(`not parsed: ${parsed.kind}`);
  const logger = pino({ enabled: false });
  const place = { statePath: '/s', logPath: '/l', maxClients: 23, worker: null, logger };
  const options = startOptions(parsed.values, place);
  t.match(options, {
    host: '127.0.0.2',
    port: 7001,
    statePath: '/s',
    logPath: '/l',
    repair: true,
    logFlushMs: 11,
    logBufferBytes: 12,
    logMaxBytes: 13,
    logKeep: 14,
    commitDelayMs: 15,
    http: { port: 7002, required: true },
    redis: null,
    nodeName: 'n1',
    proxyProtocol: true,
    logger,
    limits: {
      maxLineBytes: 16,
      idleTimeoutMs: 17,
      maxClients: 23,
      maxClientsPerAddress: 18,
      maxIds: 19,
      outputCapBytes: 20,
      drainTimeoutMs: 21,
      shutdownTimeoutMs: 22,
    },
  });
  t.notOk('worker' in options, 'a single server names no worker');
  const second = startOptions(parsed.values, { ...place, worker: 2 });
  t.match(second, { worker: 2, http: null }, 'under --workers only the first serves HTTP');
  const redis = await parseServerArgs(
    [
      ...['--redis-wait', '1', '--allow-volatile-store', '--store-timeout-ms', '24'],
      ...['--users', '/u', '--tls-cert', '/c', '--tls-key', '/k', '--auth-max-failures', '25'],
    ],
    { PARITY_STORE: 'redis://127.0.0.1:1/0' },
  );
  if (redis.kind !== 'run') throw new Error(`not parsed: ${redis.kind}`);
  t.match(startOptions(redis.values, place), {
    redis: { url: 'redis://127.0.0.1:1/0', waitReplicas: 1, allowVolatile: true, timeoutMs: 24 },
    security: {
      tls: { cert: '/c', key: '/k' },
      usersPath: '/u',
      auth: { maxFailures: 25 },
    },
  });
});

t.test('PARITY_REPAIR: 1/0/true/false (it was silently false)', async (t) => {
  for (const [value, repair] of [
    ['1', true],
    ['true', true],
    ['True', true],
    ['0', false],
    ['false', false],
  ] as const) {
    t.match(await parse([], { PARITY_REPAIR: value }), { repair }, value);
  }
  t.match(await parse(['--no-repair'], { PARITY_REPAIR: '1' }), { repair: false });
  t.match(await parse(['--repair=1']), { repair: true }, 'yargs alone reads --repair=1 as false');
});

t.test('--data-dir sets both paths; --state and --log win; all absolute', async (t) => {
  const paths = async (argv: string[], env: Record<string, string> = {}) => {
    const r = await parseServerArgs(argv, env);
    if (r.kind !== 'run') throw new Error(r.kind);
    return dataPaths(r.values);
  };
  t.same(await paths([]), {
    statePath: resolve('state/values.json'),
    logPath: resolve('logs/messages.log'),
  });
  t.same(await paths(['--data-dir', '/srv/p']), {
    statePath: '/srv/p/state/values.json',
    logPath: '/srv/p/logs/messages.log',
  });
  t.same(await paths(['--log', 'x.log'], { PARITY_DATA_DIR: '/srv/p' }), {
    statePath: '/srv/p/state/values.json',
    logPath: resolve('x.log'),
  });
  t.same(await paths(['--data-dir', '/srv/p'], { PARITY_STATE: '/etc/s.json' }), {
    statePath: '/etc/s.json',
    logPath: '/srv/p/logs/messages.log',
  });
});

t.test('a failed start is one line naming the address', async (t) => {
  const err = (code: string, extra = {}) =>
    Object.assign(new Error(`listen ${code}: stack-ish\n    at x`), { code, ...extra });
  t.equal(
    startFailure(err('EADDRINUSE', { address: '127.0.0.1', port: 7070 }), '127.0.0.1', 7070),
    'cannot start: 127.0.0.1:7070 is already in use; stop what holds it, or pick another --port',
  );
  // Tests run as root here, so EACCES is only reachable through this function.
  t.equal(
    startFailure(err('EACCES'), '0.0.0.0', 80),
    'cannot start: no permission to listen on 0.0.0.0:80; ports below 1024 need root or ' +
      'CAP_NET_BIND_SERVICE',
  );
  t.equal(
    startFailure(err('EADDRNOTAVAIL', { address: '10.9.9.9' }), '10.9.9.9', 1),
    'cannot start: 10.9.9.9 is not an address of this machine (--host)',
  );
  t.equal(startFailure(err('EIO'), 'h', 1), 'cannot start: listen EIO: stack-ish');
  t.equal(startFailure(new StateFileError('state file x: bad'), 'h', 1), 'state file x: bad');
});

t.test('PARITY_REPAIR=1 really repairs: the server starts on a corrupt state file', async (t) => {
  const dir = tempDir(t);
  const corrupt = join(dir, 'bad.json');
  writeFileSync(corrupt, '{"alice": 4');
  const prior = process.env.PARITY_REPAIR;
  process.env.PARITY_REPAIR = '1'; // startChild passes the environment on
  t.teardown(() => {
    if (prior === undefined) delete process.env.PARITY_REPAIR;
    else process.env.PARITY_REPAIR = prior;
  });
  const s = await startChild(t, ['--state', corrupt, '--log', join(dir, 'm.log')]);
  t.equal((await s.kill('SIGTERM')).code, 0, 'started on the repaired state');
});
t.test('--data-dir puts both files under one folder; --state and --log still win', async (t) => {
  const dir = tempDir(t);
  const s = await startChild(t, ['--data-dir', dir]);
  t.same(
    [s.output[0]!.state, s.output[0]!.log],
    [join(dir, 'state/values.json'), join(dir, 'logs/messages.log')],
  );
  t.equal((await s.kill('SIGTERM')).code, 0);
  t.ok(existsSync(join(dir, 'state/values.json')) && existsSync(join(dir, 'logs/messages.log')));
  const own = join(dir, 'own.log');
  const u = await startChild(t, ['--data-dir', dir, '--log', own]);
  t.same([u.output[0]!.state, u.output[0]!.log], [join(dir, 'state/values.json'), own]);
});

t.test('--version and -h', async (t) => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  const v = spawnSync(process.execPath, [SERVER_BIN, '--version'], { encoding: 'utf8' });
  t.same([v.status, v.stdout], [0, `${version}\n`]);
  const h = spawnSync(process.execPath, [SERVER_BIN, '-h'], { encoding: 'utf8' });
  t.equal(h.status, 0);
  for (const flag of [
    'max-ids',
    'max-clients-per-address',
    'log-buffer-bytes',
    'log-max-bytes',
    'log-keep',
    'data-dir',
    'version',
  ]) {
    t.match(h.stdout, `--${flag}`);
  }
  t.match(h.stdout, /--log-max-bytes.*\n.*\[default: 1073741824\]/);
  for (const command of ['passwd FILE ID', 'export FILE', 'import FILE'])
    t.match(h.stdout, `parity-server ${command}`, 'the commands are listed too');
});

t.test(
  'SIGHUP reopens the log (or says why not); SIGUSR2 is ignored; no BYE, no stop',
  async (t) => {
    const dir = tempDir(t);
    const logPath = join(dir, 'm.log');
    const s = await startChild(t, ['--state', join(dir, 's.json'), '--log', logPath]);
    const c = await LineClient.connect(t, s.port);
    t.same(await c.request('HELLO alice'), ['VALUE 0']);
    // kill() leaves the signal pending; the server takes it before it next runs, so an answer
    // after it proves the signal did not end the process (both used to, without BYE or flush).
    s.child.kill('SIGUSR2');
    t.same(await c.request('PING'), ['PONG'], 'alive after SIGUSR2');
    s.child.kill('SIGHUP');
    // Until LogFile.reopen lands, server.reopenLog() rejects: logged, and the server keeps going.
    const line = await s.waitForOutput('message log reopen');
    t.equal(line.log, logPath);
    t.equal(line.signal, 'SIGHUP');
    t.same(await c.request('VALUE 3'), ['OK 3'], 'the same connection is still served');
    t.notOk(
      s.output.some((r) => String(r.msg).startsWith('shutting down')),
      'no shutdown was started',
    );
    t.equal((await s.kill('SIGTERM')).code, 0);
    t.match(await c.readToEnd(), [/^BYE SHUTTING_DOWN /], 'the only BYE is the SIGTERM one');
  },
);

t.test('SIGUSR1 reopens the log and never starts the inspector', async (t) => {
  const dir = tempDir(t);
  // Port 0: without the fix the inspector would listen on a free port (and say so on stderr)
  // rather than clash with anything on 9229.
  const s = await startChild(
    t,
    ['--state', join(dir, 's.json'), '--log', join(dir, 'm.log')],
    ['--inspect-port=0'],
  );
  const inspector = new Promise<string>((resolve) =>
    s.child.stderr!.on('data', (d: Buffer) => {
      if (d.toString().includes('Debugger listening')) resolve('inspector started');
    }),
  );
  const reopen = s.waitForOutput('message log reopen').then(() => 'log reopen');
  s.child.kill('SIGUSR1');
  t.equal(await Promise.race([inspector, reopen]), 'log reopen');
  const c = await LineClient.connect(t, s.port);
  t.same(await c.request('PING'), ['PONG']);
  t.notMatch(s.stderr(), /Debugger/);
  t.equal((await s.kill('SIGTERM')).code, 0);
});
