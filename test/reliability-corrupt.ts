/**
 * Issue 4, item 4: a corrupt state file at start. bin/server exits non-zero with a clear message
 * and leaves the file untouched; `--repair` sets the bad file aside and starts empty.
 */
import t, { type Test } from 'tap';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../src/cli/server.js';
import { parseState } from '../src/store/state-file.js';
import { pathArgs, RawClient, runToExit, startChild } from './fixtures/reliability.js';
import { tempDir } from './fixtures/server.js';

// Real processes on a shared 2-core machine: more than tap's 30 s default when it is loaded.
t.setTimeout(90_000);

/** Each bad file, and what the message must say about it. */
const CASES: Array<{ name: string; text: string | Buffer; says: RegExp }> = [
  { name: 'truncated JSON', text: '{\n  "alice": 5,\n  "bob": ', says: /not valid JSON/ },
  {
    name: 'truncated after an entry',
    text: '{\n  "alice": 5,\n  "bob": 7',
    says: /not valid JSON/,
  },
  { name: 'empty file', text: '', says: /not valid JSON/ },
  { name: 'NUL bytes', text: Buffer.alloc(64), says: /not valid JSON/ },
  {
    name: 'invalid UTF-8',
    text: Buffer.from('{"alice": 5}\xff', 'latin1'),
    says: /not valid JSON/,
  },
  { name: 'an array', text: '[1, 2, 3]\n', says: /not a JSON object/ },
  { name: 'null', text: 'null\n', says: /not a JSON object/ },
  { name: 'a string', text: '"alice"\n', says: /not a JSON object/ },
  { name: 'a nested object', text: '{"alice": {"value": 5}}\n', says: /value of "alice"/ },
  { name: 'a value as a string', text: '{"alice": "5"}\n', says: /value of "alice"/ },
  { name: 'a value of 100', text: '{\n  "alice": 100\n}\n', says: /value of "alice"/ },
  { name: 'a negative value', text: '{"alice": -1}\n', says: /value of "alice"/ },
  { name: 'a fraction', text: '{"alice": 5.5}\n', says: /value of "alice"/ },
  { name: 'an exponent over 99', text: '{"alice": 1e2}\n', says: /value of "alice"/ },
  { name: 'a path as an id', text: '{"../../etc/passwd": 1}\n', says: /invalid id/ },
  { name: 'an empty id', text: '{"": 1}\n', says: /invalid id/ },
];

type Run = { code: number | null; stderr: string; listened: boolean };

/** Longer than any refusal takes: a main() still running by then is serving a bad file. */
const SERVES_AFTER_MS = 15_000;

/** main() of bin/server, in this process: the same code path, without a process start each. */
async function runMain(args: string[]): Promise<Run> {
  let stderr = '';
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (
    (stderr += String(chunk)),
    true
  )) as never;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // The server listens (loopback, port 0) before it opens its files, so a bad state file is
    // refused after a listen; should the check ever let one through, main() would serve instead
    // of returning, and `listened` says so.
    const served = new Promise<'served'>((resolve) => {
      timer = setTimeout(() => resolve('served'), SERVES_AFTER_MS);
    });
    const code = await Promise.race([main(['--port', '0', '--no-http', ...args]), served]);
    return code === 'served'
      ? { code: null, stderr, listened: true }
      : { code, stderr, listened: false };
  } finally {
    clearTimeout(timer);
    process.stderr.write = write;
  }
}

function checkRun(t: Test, c: (typeof CASES)[number], run: Run, file: ReturnType<typeof badFile>) {
  t.notOk(run.listened, 'refused: never serves');
  t.equal(run.code, 1, 'exits with status 1');
  t.match(run.stderr, /^parity-server: state file /, 'says it is the state file');
  t.match(run.stderr, file.statePath, 'names the file');
  t.match(run.stderr, c.says, `says what is wrong: ${run.stderr.trim()}`);
  t.match(run.stderr, /--repair/, 'names the way out');
  t.ok(Buffer.from(c.text).equals(readFileSync(file.statePath)), 'content untouched');
  t.equal(statSync(file.statePath).mtimeMs, file.before.mtimeMs, 'not rewritten');
  t.equal(statSync(file.statePath).ino, file.before.ino, 'not replaced');
  t.same(readdirSync(file.dir).sort(), ['messages.log', 'state.json'], 'nothing set aside');
}

function badFile(t: Test, c: (typeof CASES)[number]) {
  const dir = tempDir(t);
  const statePath = join(dir, 'state.json');
  writeFileSync(statePath, c.text);
  const args = pathArgs(statePath, join(dir, 'messages.log'));
  return { dir, statePath, args, before: statSync(statePath) };
}

for (const c of CASES) {
  t.test(`corrupt state (${c.name}): exit 1, clear message, file untouched`, async (t) => {
    const file = badFile(t, c);
    checkRun(t, c, await runMain(file.args), file);
  });
}

t.test('the real bin/server, one case of each kind', async (t) => {
  const kinds = ['truncated JSON', 'an array', 'a value of 100', 'a path as an id'];
  const runs = await Promise.all(
    CASES.filter((c) => kinds.includes(c.name)).map(async (c) => {
      const file = badFile(t, c);
      return { c, file, run: await runToExit(file.args) };
    }),
  );
  t.equal(runs.length, kinds.length);
  for (const { c, file, run } of runs) t.test(c.name, async (t) => checkRun(t, c, run, file));
});

t.test('a state path that cannot be read: exit non-zero with the reason', async (t) => {
  const dir = tempDir(t);
  const statePath = join(dir, 'state.json');
  mkdirSync(statePath);
  const exit = await runToExit(pathArgs(statePath, join(dir, 'messages.log')));
  t.notOk(exit.listened);
  t.equal(exit.code, 1);
  t.match(exit.stderr, /cannot read .*state\.json: not a regular file/);
});

for (const c of [CASES[0]!, CASES[10]!]) {
  t.test(`--repair with ${c.name}: set aside, start empty`, async (t) => {
    const dir = tempDir(t);
    const statePath = join(dir, 'state.json');
    writeFileSync(statePath, c.text);
    const server = await startChild(t, [
      ...pathArgs(statePath, join(dir, 'messages.log')),
      '--repair',
    ]);

    const aside = readdirSync(dir).filter((n) => /^state\.json\.corrupt-\d+$/.test(n));
    t.equal(aside.length, 1, `set aside as ${aside[0]}`);
    t.ok(Buffer.from(c.text).equals(readFileSync(join(dir, aside[0]!))), 'byte for byte');
    t.equal(parseState(readFileSync(statePath, 'utf8')).size, 0, 'a fresh empty state file');
    const client = await RawClient.connect(server.port, t);
    t.same(await client.request('HELLO alice', 'VALUE 4'), ['VALUE 0', 'OK 4'], 'starts empty');
    t.equal((await server.kill('SIGTERM')).code, 0);
    t.same([...parseState(readFileSync(statePath, 'utf8'))], [['alice', 4]]);
  });
}
