import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { ROOT, tempDir } from './fixtures/server.js';

// Real processes on a shared 2-core machine: more than tap's 30 s default when it is loaded.
t.setTimeout(90_000);

const IDS = ['alice', 'bob', 'carol'];

/** Runs dist/demo.js (as `npm run demo` does) with its state in a temp folder. */
function demo(t: Parameters<typeof tempDir>[0], dir: string) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('PARITY')),
  );
  const child = spawn(process.execPath, [join(ROOT, 'dist/demo.js')], {
    env: { ...env, PARITY_DEMO_DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  // SIGTERM, not SIGKILL: the demo then stops the server and clients it started (they are detached).
  t.teardown(() => (child.exitCode === null ? (child.kill('SIGTERM'), exited) : undefined));
  const lines: string[] = [];
  let wake = () => {};
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    wake();
  });
  const until = async (pred: () => boolean) => {
    while (!pred()) {
      if (child.exitCode !== null) throw new Error(`demo exited:\n${lines.join('\n')}`);
      await new Promise<void>((res) => (wake = res));
    }
  };
  return { child, lines, exited, until };
}

const acked = (lines: string[], id: string) =>
  lines.some((l) => new RegExp(`^${id} +\\| .*< OK \\d+$`).test(l));

t.test('labelled server and three clients; SIGINT stops them and prints last values', async (t) => {
  const dir = tempDir(t);
  const d = demo(t, dir);
  await d.until(() => IDS.every((id) => acked(d.lines, id)));
  t.ok(
    d.lines.some((l) => /^server +\| .*listening/.test(l)),
    'the server is labelled',
  );
  d.child.kill('SIGINT');
  t.equal(await d.exited, 0, 'exit 0');
  const summary = d.lines.slice(d.lines.indexOf('last values') + 1);
  for (const id of IDS) {
    const closed = d.lines.filter((l) => l.startsWith(id)).at(-1);
    const last = /last value (\d+)$/.exec(closed ?? '')?.[1];
    t.ok(last !== undefined, `${id} quit cleanly: ${closed}`);
    t.match(
      summary.find((l) => l.trimStart().startsWith(`${id} `)),
      new RegExp(`^  ${id} +${last}  \\(\\d+ values checked against the rules: all good\\)$`),
    );
  }
  const state = JSON.parse(await readFile(join(dir, 'state/demo-values.json'), 'utf8')) as object;
  t.same(Object.keys(state).sort(), IDS, 'the state went to PARITY_DEMO_DIR');
});
