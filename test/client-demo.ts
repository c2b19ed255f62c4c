import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { acked, runScript } from './fixtures/script.js';
import { tempDir } from './fixtures/server.js';

// Real processes on a shared 2-core machine: more than tap's 30 s default when it is loaded.
t.setTimeout(90_000);

const IDS = ['alice', 'bob', 'carol'];

t.test('labelled server and three clients; SIGINT stops them and prints last values', async (t) => {
  const dir = tempDir(t);
  const d = runScript(t, 'dist/demo.js', { PARITY_DEMO_DIR: dir });
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
