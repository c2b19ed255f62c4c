import t from 'tap';
import { readDurable } from '../src/store/recover.js';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LineClient, readLog, SERVER_BIN, spawnServer, tempDir } from './fixtures/server.js';

// Each test starts real servers; on a loaded 2-core machine a start takes 1-2 s.
t.setTimeout(90_000);

/** What a restart would load: the checkpoint with the journal replayed over it. */
const state = async (path: string) => Object.fromEntries(await readDurable(path));

t.test('the ready line names the loopback address; SIGTERM stops with exit 0', async (t) => {
  const s = await spawnServer(t);
  const ready = s.output[0]!;
  t.equal(ready.host, '127.0.0.1', 'loopback by default');
  // A user must not have to guess where the files went: absolute paths, in the line itself.
  t.equal(ready.msg, `listening on 127.0.0.1:${s.port}; state ${s.statePath}, log ${s.logPath}`);
  t.same([ready.state, ready.log], [s.statePath, s.logPath]);
  t.equal(await s.stop('SIGTERM'), 0);
});

t.test('SIGTERM, restart on the same files: the value is kept', async (t) => {
  const dir = tempDir(t);
  const first = await spawnServer(t, { dir });
  const c = await LineClient.connect(t, first.port);
  t.same(await c.request('HELLO alice', 'VALUE 42'), ['VALUE 0', 'OK 42']);
  const stopped = first.stop('SIGINT');
  t.match(await c.readToEnd(), [/^BYE SHUTTING_DOWN /]);
  t.equal(await stopped, 0);
  const second = await spawnServer(t, { dir });
  const d = await LineClient.connect(t, second.port);
  t.same(await d.request('HELLO alice'), ['VALUE 42']);
});

t.test(
  'kill -9 under load: every acknowledged value survives, and its request is logged',
  async (t) => {
    const dir = tempDir(t);
    const first = await spawnServer(t, { dir });
    const acked = new Map<string, number[]>();
    const inFlight = new Map<string, number>();
    let acks = 0;
    let enough!: () => void;
    const enoughAcks = new Promise<void>((r) => (enough = r));
    const clients = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const c = await LineClient.connect(t, first.port);
        await c.request(`HELLO k${i}`);
        return { c, id: `k${i}` };
      }),
    );
    // Each client pipelines values; we record every OK until the server dies.
    let n = 0;
    const loops = clients.map(async ({ c, id }) => {
      const mine: number[] = [];
      acked.set(id, mine);
      for (;;) {
        const v = (n++ * 7) % 100;
        inFlight.set(id, v);
        c.send(`VALUE ${v}\n`);
        const reply = await c.read(1).catch(() => null);
        if (reply === null) return;
        t.equal(reply[0], `OK ${v}`);
        mine.push(v);
        if (++acks === 300) enough();
      }
    });
    await enoughAcks;
    t.equal(await first.stop('SIGKILL'), 'SIGKILL');
    await Promise.all(loops);
    const values = await state(first.statePath);
    for (const [id, mine] of acked) {
      // One request in flight per client: the file holds the last acknowledged value, or the one
      // sent after it if that reached disk before the kill took its OK away. Never an earlier one.
      const allowed = [mine.at(-1) ?? 0, inFlight.get(id)];
      t.ok(
        allowed.includes(values[id]),
        `${id}: stored ${values[id]}, allowed ${allowed.join(' or ')}`,
      );
    }
    const logged = (await readLog(first.logPath))
      .filter((r) => r.dir === 'in')
      .map((r) => `${r.id}:${r.line}`);
    const inLog = new Set(logged);
    for (const [id, mine] of acked) {
      for (const v of mine)
        if (!inLog.has(`${id}:VALUE ${v}`)) t.fail(`${id} VALUE ${v} acknowledged but not logged`);
    }
    const second = await spawnServer(t, { dir });
    const c = await LineClient.connect(t, second.port);
    t.same(await c.request('HELLO k0'), [`VALUE ${values.k0}`], 'the restarted server serves it');
  },
);

t.test('a second bin/server on the same state file exits 1 and names the first', async (t) => {
  const dir = tempDir(t);
  const first = await spawnServer(t, { dir });
  const second = spawnSync(
    process.execPath,
    [SERVER_BIN, '--port', '0', '--state', first.statePath, '--log', join(dir, 'other.log')],
    { encoding: 'utf8', timeout: 10_000 },
  );
  t.equal(second.status, 1);
  t.equal(
    second.stderr,
    `parity-server: cannot start: ${first.statePath} is in use by another Parity server ` +
      `(pid ${first.child.pid}); stop it first, or give this one another --state\n`,
  );
  t.equal(await first.stop('SIGKILL'), 'SIGKILL');
  const third = await spawnServer(t, { dir });
  t.equal(await third.stop('SIGTERM'), 0, 'a killed server leaves no lock behind');
});

// CI (CI=true) installs netcat-openbsd and always runs this. On a newcomer's machine without nc,
// `npm test` says so instead of failing on a tool the project cannot install for them.
const noNc =
  spawnSync('sh', ['-c', 'command -v nc']).status !== 0 && process.env.CI !== 'true'
    ? 'nc is not installed (apt-get install netcat-openbsd)'
    : false;

t.test('a session through real nc', { skip: noNc }, async (t) => {
  const s = await spawnServer(t);
  const nc = spawn('nc', ['-N', '127.0.0.1', String(s.port)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.teardown(() => nc.kill('SIGKILL'));
  let out = '';
  nc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  nc.stdin.end('hello alice\nVALUE 5\nvalue 07\nEVEN\nPING\nQUIT\n');
  const code = await new Promise((r) => nc.on('exit', r));
  t.equal(code, 0);
  const lines = out.split('\n');
  t.same(lines.slice(0, 3), [
    'VALUE 0',
    'OK 5',
    'ERR BAD_ARGS usage: VALUE <n>, n is 0-99 without leading zeros',
  ]);
  t.match(lines[3], /^EVEN \d*[02468]$/);
  t.same(lines.slice(4), ['PONG', 'BYE', '']);
  t.equal((await state(s.statePath)).alice, 5);
});

t.test(
  'bad flags and unusable paths: a one-line reason and a non-zero exit, before listening',
  async (t) => {
    const dir = tempDir(t);
    const run = (...args: string[]) =>
      spawnSync(
        process.execPath,
        [SERVER_BIN, ...(args.includes('--port') ? [] : ['--port', '0']), ...args],
        {
          encoding: 'utf8',
          timeout: 10_000,
        },
      );
    const badPort = run('--port', '70000');
    t.equal(badPort.status, 2);
    t.equal(
      badPort.stderr,
      'parity-server: invalid --port 70000: use an integer 0-65535\n' +
        'Run with --help for the options.\n',
    );
    t.match(run('--port', 'abc').stderr, /^parity-server: invalid --port abc: /, 'not NaN');
    const twice = run('--state', join(dir, 'a.json'), '--state', join(dir, 'b.json'));
    t.equal(twice.status, 2);
    t.match(twice.stderr, /^parity-server: --state given more than once\n/, 'not a TypeError');
    t.equal(run('--bogus').status, 2, 'unknown flag');
    const corrupt = join(dir, 'bad.json');
    writeFileSync(corrupt, '{"alice": 4');
    const bad = run('--state', corrupt, '--log', join(dir, 'm.log'));
    t.equal(bad.status, 1);
    t.match(bad.stderr, /^parity-server: state file .*bad\.json: not valid JSON.*--repair/);
    t.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
    t.equal(readFileSync(corrupt, 'utf8'), '{"alice": 4', 'left untouched');
    writeFileSync(join(dir, 'file'), '');
    const unusable = run('--state', join(dir, 'file', 'state.json'), '--log', join(dir, 'm2.log'));
    t.equal(unusable.status, 1);
    t.match(unusable.stderr, /^parity-server: cannot start: .*(ENOTDIR|EEXIST)/);
  },
);

t.test('PARITY_* environment variables set the options', async (t) => {
  const dir = tempDir(t);
  const r = spawnSync(process.execPath, [SERVER_BIN], {
    encoding: 'utf8',
    timeout: 10_000,
    env: {
      ...process.env,
      PARITY_PORT: '99999',
      PARITY_ID: 'alice',
      PARITY_STATE: join(dir, 's.json'),
    },
  });
  t.equal(r.status, 2);
  t.match(
    r.stderr,
    /^parity-server: invalid PARITY_PORT=99999: /,
    'PARITY_PORT is read; PARITY_ID, a client option, is ignored',
  );
});

t.test('a busy port: one line on stderr, exit 1, no stack', async (t) => {
  const dir = tempDir(t);
  const first = await spawnServer(t, { dir });
  const second = spawnSync(
    process.execPath,
    [SERVER_BIN, '--port', String(first.port), '--data-dir', dir, '--state', join(dir, 'o.json')],
    { encoding: 'utf8', timeout: 10_000 },
  );
  t.equal(second.status, 1);
  t.equal(
    second.stderr,
    `parity-server: cannot start: 127.0.0.1:${first.port} is already in use; ` +
      'stop what holds it, or pick another --port\n',
  );
});
