/** `parity-server export` and `import`, as an operator runs them: the URL from PARITY_STORE. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { redisMissing, startRedis } from './fixtures/redis.js';
import { SERVER_BIN, tempDir } from './fixtures/server.js';

async function run(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [SERVER_BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  child.stdout.resume();
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stderr };
}

t.test('without PARITY_STORE, or a file: usage, exit 2', async (t) => {
  const none = await run(['import', 'x.json'], { PARITY_STORE: '' });
  t.equal(none.code, 2);
  t.match(none.stderr, /set PARITY_STORE=redis:\/\//);
  const usage = await run(['export'], { PARITY_STORE: 'redis://127.0.0.1:1/0' });
  t.equal(usage.code, 2);
  t.match(usage.stderr, /usage: parity-server export STATE_FILE/);
});

t.test(
  'import then export round-trips; a password never reaches the output',
  { skip: redisMissing() },
  async (t) => {
    const redis = await startRedis(t, { args: ['--requirepass', 's3cret'] });
    const url = redis.url.replace('redis://', 'redis://:s3cret@');
    const dir = tempDir(t);
    const from = join(dir, 'values.json');
    writeFileSync(from, JSON.stringify({ alice: 42, bob: 7 }));
    const imported = await run(['import', from], { PARITY_STORE: url });
    t.equal(imported.code, 0, imported.stderr);
    t.match(imported.stderr, /2 ids read .*; 2 written to redis:\/\/:\*\*\*@/);
    const to = join(dir, 'back.json');
    const exported = await run(['export', to], { PARITY_STORE: url });
    t.equal(exported.code, 0, exported.stderr);
    t.same(JSON.parse(readFileSync(to, 'utf8')), { alice: 42, bob: 7 });
    const refused = await run(['export', to], { PARITY_STORE: url });
    t.equal(refused.code, 1, 'an existing state file is not overwritten');
    t.notMatch(imported.stderr + exported.stderr + refused.stderr, /s3cret/, 'no password shown');
  },
);
