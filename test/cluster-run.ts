import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { acked, runScript } from './fixtures/script.js';
import { tempDir } from './fixtures/server.js';

// `npm run cluster` (dist/cluster.js) for real: redis-server, three servers, HAProxy and three
// clients. CI (CI=true) installs both tools and always runs this; elsewhere it is skipped, with
// the reason, where one is missing.
t.setTimeout(90_000);

const IDS = ['alice', 'bob', 'carol'];
const SERVERS = ['parity1', 'parity2', 'parity3'];

const missing = ['redis-server', 'haproxy']
  .filter((tool) => spawnSync('sh', ['-c', `PATH="$PATH:/usr/sbin" command -v ${tool}`]).status)
  .map((tool) => `${tool} is not installed (CI installs it)`)[0];
const skip = missing !== undefined && process.env.CI !== 'true' ? missing : false;

/** The table's rows: name, pid, port (a client's: HAProxy's). */
const table = (lines: string[]) =>
  lines.flatMap((l) => {
    const m = /^ {2}(\S+) +pid (\d+) +(?:-> )?127\.0\.0\.1:(\d+)/.exec(l);
    return m ? [{ name: m[1]!, pid: Number(m[2]), port: Number(m[3]) }] : [];
  });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Each client's value as it said when it stopped ("closed: …; last value n"). */
const lastValues = (lines: string[]) =>
  Object.fromEntries(
    IDS.map((id) => {
      const closed = lines.filter((l) => l.startsWith(`${id} `)).at(-1);
      return [id, /; last value (\d+)$/.exec(closed ?? '')?.[1]];
    }),
  );

/** Each client's first HELLO answer: the value the store had for it. */
const helloValues = (lines: string[]) =>
  Object.fromEntries(
    IDS.map((id) => {
      const answer = new RegExp(`^${id} +\\| .*< VALUE (\\d+)$`);
      return [id, lines.map((l) => answer.exec(l)?.[1]).find((v) => v !== undefined)];
    }),
  );

/** The cluster script, and in teardown: no process it printed lives on, whatever happened. */
function cluster(t: Parameters<typeof tempDir>[0], env: Record<string, string>) {
  const run = runScript(t, 'dist/cluster.js', env);
  t.teardown(async () => {
    await run.stop();
    for (const row of table(run.lines)) if (alive(row.pid)) process.kill(row.pid, 'SIGKILL');
  });
  return run;
}

t.test(
  'Redis, three servers, HAProxy, three clients; SIGINT stops them all',
  { skip },
  async (t) => {
    const dir = join(tempDir(t), 'cluster');
    const run = cluster(t, { PARITY_CLUSTER_DIR: dir });
    await run.until(() => IDS.every((id) => acked(run.lines, id)));
    const rows = table(run.lines);
    t.same(
      rows.map((r) => r.name),
      ['redis', ...SERVERS, 'haproxy', ...IDS],
      'the table names every process',
    );
    const frontend = rows.find((r) => r.name === 'haproxy')!.port;
    for (const id of IDS) {
      t.equal(rows.find((r) => r.name === id)!.port, frontend, `${id} is a client of HAProxy`);
      const connecting = new RegExp(`^${id} +\\| .*connecting to 127\\.0\\.0\\.1:${frontend}$`);
      t.ok(
        run.lines.some((l) => connecting.test(l)),
        `${id} connected to HAProxy`,
      );
    }

    run.child.kill('SIGINT');
    t.equal(await run.exited, 0, 'exit 0');
    const summary = run.lines.slice(run.lines.indexOf('last values') + 1);
    const last = lastValues(run.lines);
    for (const id of IDS) {
      t.ok(last[id] !== undefined, `${id} quit cleanly`);
      t.match(
        summary.find((l) => l.trimStart().startsWith(`${id} `)),
        new RegExp(
          `^  ${id} +${last[id]}  \\(on parity[123]; [1-9]\\d* values checked against the rules: all good\\)$`,
        ),
        `${id}: last value and audit`,
      );
    }
    t.same(
      rows.filter((r) => alive(r.pid)),
      [],
      'no process left',
    );
    t.ok(run.lines.includes(`kept ${dir}`), 'PARITY_CLUSTER_DIR is kept, and it says so');
    for (const name of SERVERS) {
      const records = readFileSync(join(dir, `${name}.log`), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { node?: string });
      t.ok(
        records.length > 0 && records.every((r) => r.node === name),
        `${name}.log: node ${name}`,
      );
    }

    t.test('a next run in the same folder resumes the values', async (t) => {
      // Redis starts again on its append-only file: each client's HELLO answers its last value.
      const again = cluster(t, { PARITY_CLUSTER_DIR: dir });
      await again.until(() => IDS.every((id) => helloValues(again.lines)[id] !== undefined));
      t.same(helloValues(again.lines), last, 'HELLO answers the values of the last run');
      again.child.kill('SIGTERM');
      t.equal(await again.exited, 0, 'exit 0');
      t.same(
        table(again.lines).filter((r) => alive(r.pid)),
        [],
        'no process left',
      );
    });
  },
);

t.test('the scratch folder is removed, even when stopped while starting', { skip }, async (t) => {
  // TMPDIR: the scratch folder goes in one of this test's, removed in teardown either way.
  const tmp = tempDir(t);
  const run = cluster(t, { TMPDIR: tmp });
  await run.until(() => run.lines.some((l) => /^redis +\| .*Ready to accept connections/.test(l)));
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, 'exit 0');
  t.match(run.lines.at(-1), /^removed .*parity-cluster-/, 'it says so');
  t.same(readdirSync(tmp), [], 'nothing left in TMPDIR');
});

t.test('without redis-server: how to install it, and nothing started', async (t) => {
  // A PATH with node alone (node's own folder may hold redis-server too).
  const tmp = tempDir(t);
  const bin = join(tmp, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  const scratch = join(tmp, 'scratch');
  mkdirSync(scratch);
  const run = runScript(t, 'dist/cluster.js', { PATH: bin, TMPDIR: scratch }, 'pipe');
  t.equal(await run.exited, 1, 'exit 1');
  t.same(run.lines, [], 'nothing on stdout');
  t.match(
    run.stderr(),
    /^npm run cluster needs redis-server .*: apt-get install redis-server haproxy\n$/,
  );
  t.same(readdirSync(scratch), [], 'no scratch folder made');
});
