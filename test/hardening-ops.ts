/**
 * Issue 11, the operator's side, against the real bin/server: logrotate's rename + SIGHUP loses
 * and repeats nothing; built-in rotation keeps N whole files; a full disk under the log holds the
 * backlog to its cap, recovers when space returns, and a final flush that fails exits non-zero;
 * StrictModes refuses folders and symlinks other users can change; a FIFO as state file is
 * refused, not waited on; --repair says what it set aside.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lchownSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  parseLogText,
  pathArgs,
  procStats,
  RawClient,
  runToExit,
  startChild,
  type Json,
} from './fixtures/reliability.js';
import { tempDir } from './fixtures/server.js';

t.setTimeout(120_000);

const NOBODY = 65534;

const records = (path: string) => {
  const { records, bad } = parseLogText(readFileSync(path, 'utf8'));
  if (bad.length > 0) throw new Error(`${path}: ${bad.length} lines that are not records`);
  return records;
};
const requests = (rs: Json[]) => rs.filter((r) => r.dir === 'in').map((r) => String(r.line));

/** Sends `n` pipelined VALUEs for one id and checks every reply is its OK. */
async function values(t: Test, client: RawClient, n: number, from = 0) {
  const lines = Array.from({ length: n }, (_, i) => `VALUE ${(from + i) % 100}`);
  const replies = await client.request(...lines);
  t.same(
    replies,
    lines.map((l) => l.replace('VALUE', 'OK')),
    `${n} VALUEs acknowledged`,
  );
}

t.test('logrotate: rename, then SIGHUP; nothing lost, nothing twice', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'messages.log');
  const server = await startChild(t, pathArgs(join(dir, 'state.json'), log));
  const client = await RawClient.connect(server.port, t);
  t.same(await client.request('HELLO rot'), ['VALUE 0']);
  await values(t, client, 300);
  renameSync(log, `${log}.1`); // what logrotate does before its postrotate
  await values(t, client, 100, 300); // still written to the renamed file, as with nginx
  server.child.kill('SIGHUP');
  await server.waitForOutput('message log reopened');
  await values(t, client, 200, 400);
  t.same(await client.request('QUIT'), ['BYE']);
  t.equal((await server.kill('SIGTERM')).code, 0, 'still running after SIGHUP, then a clean stop');

  const old = records(`${log}.1`);
  const fresh = records(log);
  t.match(fresh[0], { event: 'reopened' }, 'the new file starts by saying it was reopened');
  const all = [...requests(old), ...requests(fresh)];
  t.equal(all.filter((l) => l.startsWith('VALUE')).length, 600, 'every VALUE logged exactly once');
  t.equal(statSync(log).mode & 0o777, 0o600, 'the new file is 0600');
});

t.test('--log-max-bytes and --log-keep: whole records, N files kept', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'messages.log');
  const args = [...pathArgs(join(dir, 'state.json'), log), '--log-max-bytes', '20000'];
  const server = await startChild(t, [...args, '--log-keep', '2']);
  const client = await RawClient.connect(server.port, t);
  t.same(await client.request('HELLO big'), ['VALUE 0']);
  for (let i = 0; i < 10; i++) await values(t, client, 100, i * 100);
  t.equal((await server.kill('SIGTERM')).code, 0);
  const names = readdirSync(dir)
    .filter((n) => n.startsWith('messages.log'))
    .sort();
  t.same(names, ['messages.log', 'messages.log.1', 'messages.log.2'], 'two rotated files kept');
  for (const name of names) {
    const path = join(dir, name);
    records(path); // throws on a cut record
    t.equal(statSync(path).mode & 0o777, 0o600, `${name} is 0600`);
  }
  t.match(records(join(dir, 'messages.log.1'))[0], { event: 'rotated' });
  t.ok(statSync(join(dir, 'messages.log.1')).size < 20000 + 70 * 1024, 'rotated near its size');
});

/** A tmpfs of `size` at `dir`, unmounted in teardown; null (with the reason) where none can be had. */
function tmpfs(t: Test, dir: string, size: string): string | null {
  mkdirSync(dir, { recursive: true });
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  if (mount.status !== 0) return `cannot mount a tmpfs: ${mount.stderr.toString().trim()}`;
  t.teardown(() => void spawnSync('umount', ['-l', dir]));
  return null;
}

t.test(
  'a full disk under the log: bounded, recovers, and a failed final flush exits 1',
  async (t) => {
    const dir = tempDir(t);
    const logs = join(dir, 'logs');
    const why = tmpfs(t, logs, '1m');
    if (why !== null) return void t.fail(why);
    const log = join(logs, 'messages.log');
    const server = await startChild(t, [
      ...pathArgs(join(dir, 'state.json'), log),
      '--log-buffer-bytes',
      String(4 * 1024 * 1024),
    ]);
    const rssBefore = procStats(server.pid).rssKiB;
    const client = await RawClient.connect(server.port, t);
    t.same(await client.request('HELLO full'), ['VALUE 0']);
    // ~65-byte records, two per request: about 8,000 requests fill 1 MiB.
    let failed = 0;
    for (let round = 0; round < 40 && failed === 0; round++) {
      const replies = await client.request(...Array.from({ length: 500 }, () => 'VALUE 1'));
      failed = replies.filter((r) => r.startsWith('ERR STORAGE')).length;
    }
    t.ok(failed > 0, 'once the disk is full, VALUE is ERR STORAGE, never OK');
    // Keep asking while it is full: the log may hold at most its buffer cap.
    for (let round = 0; round < 20; round++) {
      const replies = await client.request(...Array.from({ length: 500 }, () => 'PING'));
      t.equal(replies.length, 500);
    }
    const grown = procStats(server.pid).rssKiB - rssBefore;
    t.ok(grown < 64 * 1024, `RSS grew ${Math.round(grown / 1024)} MiB while full (cap 4 MiB)`);

    t.equal(spawnSync('mount', ['-o', 'remount,size=64m', logs]).status, 0, 'space comes back');
    const [after] = await client.request('VALUE 2');
    t.equal(after, 'OK 2', 'the next VALUE is acknowledged again, without a restart');
    const logged = requests(records(log));
    t.ok(logged.includes('VALUE 2'), 'and its request line is in the log');

    // Fill it again (a file takes the rest of the space), and stop while it is full.
    spawnSync('dd', ['if=/dev/zero', `of=${join(logs, 'filler')}`, 'bs=1M', 'count=64']);
    const replies = await client.request(...Array.from({ length: 2000 }, () => 'PING'));
    t.equal(replies.length, 2000);
    const exit = await server.kill('SIGTERM');
    t.equal(exit.code, 1, 'the final flush failed, so the exit status says so');
    t.ok(
      server.output.some((r) => String(r.msg).startsWith('final log write failed')),
      'and the console log says why',
    );
  },
);

t.test('StrictModes: a folder other users can change is refused; sticky only above', async (t) => {
  const dir = tempDir(t);
  const state = join(dir, 'state');
  mkdirSync(state);
  chmodSync(state, 0o777);
  const refused = await runToExit(pathArgs(join(state, 'values.json'), join(dir, 'm.log')));
  t.equal(refused.code, 1);
  t.match(refused.stderr, new RegExp(`${state}.*writable by other users.*chmod`, 's'));
  t.notOk(existsSync(join(state, 'values.json')), 'nothing was written there');

  const logs = join(dir, 'logs');
  mkdirSync(logs);
  chmodSync(logs, 0o775);
  chmodSync(state, 0o700);
  const log = await runToExit(pathArgs(join(state, 'values.json'), join(logs, 'm.log')));
  t.equal(log.code, 1, 'a group-writable log folder too');
  t.match(log.stderr, logs);

  // Sticky, as /tmp: others may not remove or rename our names, but may add their own, so the
  // folder holding the log must still be ours alone; a sticky folder above it is fine.
  chmodSync(logs, 0o1777);
  const sticky = await runToExit(pathArgs(join(state, 'values.json'), join(logs, 'm.log')));
  t.equal(sticky.code, 1, 'a sticky log folder is refused');
  t.notOk(existsSync(join(logs, 'm.log')), 'and no log was created in it');
  const ok = await runToExit(pathArgs(join(state, 'values.json'), join(logs, 'own', 'm.log')));
  t.ok(ok.listened, 'a folder of its own under a sticky one is accepted');
  t.equal(statSync(join(logs, 'own')).mode & 0o7777, 0o700);
});

const asRoot = { skip: process.getuid?.() === 0 ? false : 'needs root to plant as another user' };

t.test(
  'a symlink another user planted on the way is refused; its target untouched',
  asRoot,
  async (t) => {
    const dir = tempDir(t);
    const shared = join(dir, 'shared'); // a /tmp of our own: world-writable and sticky
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const victims = join(dir, 'victims');
    mkdirSync(victims, { mode: 0o700 });
    const secret = join(victims, 'secret.conf');
    writeFileSync(secret, 'root only\n', { mode: 0o600 });
    const plant = (link: string, target: string) => {
      symlinkSync(target, link);
      lchownSync(link, NOBODY, NOBODY);
    };

    plant(join(shared, 'values.json'), secret);
    const file = await runToExit([
      ...pathArgs(join(shared, 'values.json'), join(dir, 'm.log')),
      '--repair',
    ]);
    t.equal(file.code, 1);
    t.match(file.stderr, /unsafe symlink: .*values\.json.* belongs to uid 65534/);

    // --data-dir on the shared folder: its state/ and logs/ planted as links to a root-only folder.
    plant(join(shared, 'state'), victims);
    plant(join(shared, 'logs'), victims);
    const data = await runToExit(['--data-dir', shared, '--no-http']);
    t.equal(data.code, 1);
    t.match(data.stderr, /unsafe symlink: .*belongs to uid 65534/);

    t.same(readdirSync(victims), ['secret.conf'], 'nothing created beside the victim');
    t.equal(readFileSync(secret, 'utf8'), 'root only\n', 'and it is unchanged');
  },
);

t.test('a FIFO at the state path: refused at once, not waited on', async (t) => {
  const dir = tempDir(t);
  const fifo = join(dir, 'values.json');
  t.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const exit = await runToExit(pathArgs(fifo, join(dir, 'm.log')));
  t.equal(exit.code, 1, 'exits, where it used to hang until something wrote to the FIFO');
  t.match(exit.stderr, /cannot read .*values\.json: not a regular file/);
});

t.test('--repair says in the console log what it set aside', async (t) => {
  const dir = tempDir(t);
  const statePath = join(dir, 'state.json');
  writeFileSync(statePath, '{"a": 100}');
  const server = await startChild(t, [...pathArgs(statePath, join(dir, 'm.log')), '--repair']);
  const warning = server.output.find((r) => String(r.msg).includes('set aside'));
  t.ok(warning, 'a warning before the ready line');
  t.match(String(warning?.setAside), `${statePath}.corrupt-`);
  t.ok(existsSync(String(warning?.setAside)), 'and the file is there, as it was');
  t.equal(readFileSync(String(warning?.setAside), 'utf8'), '{"a": 100}');
});
