import t from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { ROOT, type TestLike } from './fixtures/server.js';

// What a user gets: `npm pack` of this checkout, installed globally from the tarball into a temp
// prefix, its bins run as installed. The tarball once left out dist/ (it is git-ignored), so the
// installed bins died with ERR_MODULE_NOT_FOUND while every test of the checkout passed.
// Installing reaches the npm registry for the runtime dependencies; CI (CI=true) has it, and a
// newcomer offline gets a skip instead of a failure.

const run = promisify(execFile);
const VERSION = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
const OFFLINE = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH/;

t.setTimeout(240_000);
const tmp = mkdtempSync(join(tmpdir(), 'parity-package-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

// npm running this test (`npm test`) exports npm_config_* and npm_command, and a child npm would
// obey them (a local_prefix pointing at the checkout, for one): give the children a clean slate.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')),
);
const npm = (args: string[], cwd: string) =>
  run('npm', ['--no-audit', '--no-fund', '--cache', join(tmp, 'cache'), ...args], {
    cwd,
    env,
    timeout: 180_000,
    maxBuffer: 16 * 1024 * 1024,
  });

// Pack a copy, not the checkout: prepack rebuilds dist/ from scratch, and other test files run
// the checkout's bin/server from dist/ at the same time. The copy shares node_modules for tsc.
const src = join(tmp, 'src');
const SKIP = ['node_modules', 'dist', '.git', '.tap', 'coverage', 'state', 'logs', 'bench/results'];
cpSync(ROOT, src, {
  recursive: true,
  filter: (path) => !SKIP.includes(relative(ROOT, path)),
});
symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
const packed = await npm(['pack', '--json', '--pack-destination', tmp], src);
const [manifest] = JSON.parse(packed.stdout) as Array<{
  filename: string;
  files: { path: string }[];
}>;
const tarball = join(tmp, manifest!.filename);
const prefix = join(tmp, 'global');
let offline: string | false = false;
try {
  await npm(['install', '--global', '--prefix', prefix, tarball], tmp);
} catch (err) {
  const output = String((err as { stderr?: string }).stderr ?? err);
  if (process.env.CI === 'true' || !OFFLINE.test(output)) throw err;
  offline = `npm registry unreachable: ${OFFLINE.exec(output)![0]}`;
}
const bin = (name: string) => join(prefix, 'bin', name);

t.test('the tarball has the built code and the docs, not tests, sources or maps', async (t) => {
  const files = manifest!.files.map((f) => f.path);
  for (const f of ['dist/cli/server.js', 'dist/cli/client.js', 'bin/server', 'bin/client'])
    t.ok(files.includes(f), f);
  for (const f of ['README.md', 'protocol.md', 'package.json', 'deploy/parity.service'])
    t.ok(files.includes(f), f);
  t.same(
    files.filter((f) => /^(src|test|bench)\/|\.map$|\.ts$/.test(f)),
    [],
    'no sources, tests, benchmarks or source maps',
  );
});

t.test('prepare leaves an install without dev dependencies alone', async (t) => {
  // `npm ci --omit=dev` in a clone: src/ is there, TypeScript is not. A bare `tsc` in prepare
  // failed that whole install; packing without a build must still fail.
  const bare = join(tmp, 'bare');
  for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts', 'src'])
    cpSync(join(ROOT, f), join(bare, f), { recursive: true });
  const { stderr } = await npm(['run', 'prepare'], bare);
  t.match(stderr, /not building dist\/: TypeScript is not installed/);
  t.notOk(existsSync(join(bare, 'dist')));
  const packCode = await npm(['run', 'prepack'], bare).then(
    () => 0,
    (err: { code: number }) => err.code,
  );
  t.not(packCode, 0, 'prepack refuses to pack without a build');
});

t.test('the installed bins print the package version', { skip: offline }, async (t) => {
  for (const name of ['parity-server', 'parity-client']) {
    const result = await run(bin(name), ['--version'], { env }).catch(
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    t.equal(result.stdout.trim(), VERSION, `${name} --version`, { stderr: result.stderr });
  }
});

t.test('npm exec runs the server from the tarball', { skip: offline }, async (t) => {
  // --help, not --version, so that this checks npm exec on its own.
  const { stdout } = await npm(
    ['exec', '--yes', '--package', tarball, '--', 'parity-server', '--help'],
    tmp,
  );
  t.match(stdout, /^parity-server \[options\]/);
});

t.test('the installed server and client count together', { skip: offline }, async (t) => {
  const dir = mkdtempSync(join(tmp, 'run-'));
  const statePath = join(dir, 's/values.json');
  const server = start(t, bin('parity-server'), [
    '--port',
    '0',
    '--http-port',
    '0',
    '--state',
    statePath,
    '--log',
    join(dir, 'l/messages.log'),
  ]);
  const listening = await nextRecord(server, (r) => String(r.msg).startsWith('listening on'));
  const client = start(t, bin('parity-client'), [
    '--id',
    'alice',
    '--port',
    String(listening.port),
  ]);
  const got = await nextRecord(
    client,
    // OK: the server took a value and committed it, so it is in the state file.
    (r) => r.event === 'received' && /^OK \d+$/.test(String(r.line)),
  );
  t.pass(`the client got "${got.line}"`);
  t.same(await stop(client), [0, null], 'client exits 0 on SIGTERM');
  t.same(await stop(server), [0, null], 'server exits 0 on SIGTERM');
  t.match(readFileSync(statePath, 'utf8'), /"alice"/, 'the state was saved');
});

type Json = Record<string, unknown>;

/** The bin as a child process with stdout piped (so it prints JSON lines), killed in teardown. */
function start(t: TestLike, path: string, args: string[]): ChildProcess {
  const child = spawn(path, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** The first JSON line on the child's stdout that matches; rejects if the child exits first. */
function nextRecord(child: ChildProcess, match: (r: Json) => boolean): Promise<Json> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const onExit = (code: number | null) => reject(new Error(`exited (${code}) before the line`));
    child.once('exit', onExit);
    lines.on('line', (line) => {
      let record: Json;
      try {
        record = JSON.parse(line) as Json;
      } catch {
        return;
      }
      if (!match(record)) return;
      child.off('exit', onExit);
      lines.close();
      child.stdout!.resume(); // keep draining: a full pipe would stall the child
      resolve(record);
    });
  });
}

/** SIGTERM, then the exit code and signal. */
async function stop(child: ChildProcess): Promise<[number | null, string | null]> {
  const exited = new Promise<[number | null, string | null]>((resolve) =>
    child.once('exit', (code, signal) => resolve([code, signal])),
  );
  child.kill('SIGTERM');
  return exited;
}
