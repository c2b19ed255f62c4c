import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import t from 'tap';
import { ROOT } from './fixtures/server.js';

/** Runs bin/client to completion; these cases all exit before connecting anywhere. */
async function run(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('PARITY')),
  );
  const child = spawn(process.execPath, [join(ROOT, 'bin/client'), ...args], {
    env: { ...clean, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

const bad: Array<[string, string[], Record<string, string>, RegExp]> = [
  ['no --id', [], {}, /^parity-client: missing --id$/],
  ['an invalid id', ['--id', 'a/b'], {}, /^parity-client: invalid --id "a\/b"/],
  ['an id over 64 characters', ['--id', 'x'.repeat(65)], {}, /^parity-client: invalid --id/],
  ['port 0', ['--id', 'a', '--port', '0'], {}, /^parity-client: invalid --port 0/],
  ['port 70000', ['--id', 'a', '--port', '70000'], {}, /^parity-client: invalid --port/],
  ['a port that is no number', ['--id', 'a', '--port', 'http'], {}, /invalid --port/],
  ['a bad PARITY_PORT', ['--id', 'a'], { PARITY_PORT: '1.5' }, /invalid --port 1.5/],
  [
    'min over max',
    ['--id', 'a', '--switch-min-ms', '9', '--switch-max-ms', '8'],
    {},
    /--switch-max-ms/,
  ],
  ['tick 0', ['--id', 'a', '--tick-ms', '0'], {}, /invalid --tick-ms 0/],
  ['an unknown flag', ['--id', 'a', '--colour'], {}, /^parity-client: Unknown argument: colour$/],
  ['a stray argument', ['--id', 'a', 'extra'], {}, /^parity-client: Unknown argument: extra$/],
];

t.jobs = 4;

for (const [name, args, env, reason] of bad) {
  t.test(`${name}: exit 2, a one-line reason, then the usage`, async (t) => {
    const { code, stdout, stderr } = await run(args, env);
    t.equal(code, 2);
    const [first, blank, usage] = stderr.split('\n');
    t.match(first, reason);
    t.equal(blank, '');
    t.match(usage, /^Usage: parity-client --id <id>/);
    t.equal(stdout, '', 'nothing on stdout');
  });
}

t.test('--help shows every flag with its default, exit 0', async (t) => {
  const { code, stdout } = await run(['--help']);
  t.equal(code, 0);
  for (const flag of [
    '--id',
    '--host',
    '--port',
    '--tick-ms',
    '--switch-min-ms',
    '--switch-max-ms',
    '--quiet',
  ]) {
    t.match(stdout, flag);
  }
  t.match(stdout, /default: 7070/);
  t.match(stdout, /PARITY_/);
});

t.test('PARITY_ID is read from the environment', async (t) => {
  const { code, stderr } = await run(['--port', '0'], { PARITY_ID: 'carol' });
  t.equal(code, 2);
  t.match(stderr, /^parity-client: invalid --port 0/, 'got past the id check');
});

t.test("the server's PARITY_* variables do not stop the client", async (t) => {
  const { code, stderr } = await run(['--id', 'a', '--port', '0'], { PARITY_STATE: 'x.json' });
  t.equal(code, 2);
  t.match(stderr, /^parity-client: invalid --port 0/, 'PARITY_STATE was not an unknown argument');
});
