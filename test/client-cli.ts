import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseArgs } from '../src/cli/client.js';
import { ROOT } from './fixtures/server.js';

// Each check spawns bin/client; on a loaded 2-core machine the file passes tap's 30 s default.
t.setTimeout(90_000);

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
  ['a bad PARITY_PORT', ['--id', 'a'], { PARITY_PORT: '1.5' }, /invalid PARITY_PORT=1.5:/],
  // yargs' number type showed these as NaN: the message must show what was typed.
  [
    'a port that is a word',
    ['--id', 'a', '--port', 'abc'],
    {},
    /^parity-client: invalid --port abc: use an integer 1-65535$/,
  ],
  [
    'a flag given twice',
    ['--id', 'a', '--id', 'b'],
    {},
    /^parity-client: --id given more than once$/,
  ],
  // Node clamps a timer past 2^31-1 ms to 1 ms: a "slow" tick would flood the server.
  [
    'a tick too long for a timer',
    ['--id', 'a', '--tick-ms', '3000000000'],
    {},
    /^parity-client: invalid --tick-ms 3000000000: use an integer 1-2147483647$/,
  ],
  [
    'a PARITY_QUIET that is no boolean',
    ['--id', 'a'],
    { PARITY_QUIET: 'loud' },
    /^parity-client: invalid PARITY_QUIET=loud: use 1, 0, true or false$/,
  ],
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

t.test('PARITY_QUIET takes 1/0/true/false; the command line wins over it', async (t) => {
  const quiet = async (args: string[], env: Record<string, string>) => {
    const parsed = await parseArgs(['--id', 'a', ...args], env);
    if (typeof parsed === 'number') throw new Error(`exit ${parsed}`);
    return parsed.quiet;
  };
  t.equal(await quiet([], { PARITY_QUIET: '1' }), true, 'PARITY_QUIET=1 (was silently false)');
  t.equal(await quiet([], { PARITY_QUIET: 'TRUE' }), true);
  t.equal(await quiet([], { PARITY_QUIET: '0' }), false);
  t.equal(await quiet([], {}), false);
  t.equal(await quiet(['--quiet'], { PARITY_QUIET: '0' }), true);
  t.equal(await quiet(['--no-quiet'], { PARITY_QUIET: '1' }), false);
  t.equal(await quiet(['--quiet=1'], {}), true, '--quiet=1 (yargs reads it as false)');
});

t.test('--version and -h, exit 0', async (t) => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  const v = await run(['--version']);
  t.same([v.code, v.stdout], [0, `${version}\n`]);
  const h = await run(['-h']);
  t.equal(h.code, 0);
  t.match(h.stdout, /^Usage: parity-client --id <id>/);
  t.match(h.stdout, /--version/);
});
