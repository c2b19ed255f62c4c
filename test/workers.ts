/**
 * `--workers N` on a Redis store: N processes accept on one port (node:cluster), each with its
 * own message log and node name; the primary passes SIGTERM on and exits once all have stopped.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runToExit, startChild } from './fixtures/child.js';
import { redisMissing, startRedis } from './fixtures/redis.js';
import { LineClient, readLog, tempDir } from './fixtures/server.js';

t.setTimeout(90_000);
const missing = redisMissing();

t.test('--workers without a Redis store is a usage error', async (t) => {
  const dir = tempDir(t);
  const r = await runToExit(['--workers', '2', '--data-dir', dir]);
  t.equal(r.code, 2);
  t.match(r.stderr, /--workers needs --store redis:\/\//);
});

t.test(
  'two workers share the port, each with its own log; SIGTERM stops both',
  { skip: missing },
  async (t) => {
    const redis = await startRedis(t);
    const dir = tempDir(t);
    const log = join(dir, 'messages.log');
    const server = await startChild(t, [
      '--store',
      redis.url,
      '--workers',
      '2',
      '--log',
      log,
      '--max-clients-per-address',
      '100',
      ...['--http-port', '0'],
    ]);
    await server.waitForOutput('listening'); // the first worker's; wait for the second's too
    while (server.output.filter((r) => String(r.msg).startsWith('listening')).length < 2)
      await new Promise((r) => setTimeout(r, 50));
    const clients = await Promise.all(
      Array.from({ length: 8 }, () => LineClient.connect(t, server.port)),
    );
    for (const [i, c] of clients.entries())
      t.same(await c.request(`HELLO w${i}`, `VALUE ${i}`), ['VALUE 0', `OK ${i}`]);
    // A takeover between the workers goes through Redis like one between servers.
    const again = await LineClient.connect(t, server.port);
    t.same(await again.request('HELLO w3'), ['VALUE 3']);
    const exit = await server.kill('SIGTERM');
    t.equal(exit.code, 0, 'the primary exits 0 once both workers have stopped');
    const logs = [1, 2].map((w) => join(dir, `messages.w${w}.log`));
    t.ok(
      logs.every((p) => existsSync(p)),
      'one log per worker',
    );
    const nodes = new Set<unknown>();
    let hellos = 0;
    for (const p of logs) {
      const records = await readLog(p);
      for (const r of records) nodes.add(r.node);
      hellos += records.filter((r) => r.dir === 'in' && String(r.line).startsWith('HELLO')).length;
    }
    t.same(
      [...nodes].sort(),
      [`127.0.0.1:${server.port}/w1`, `127.0.0.1:${server.port}/w2`],
      'each worker names itself in its records',
    );
    t.equal(hellos, 9, 'every HELLO is in one of the logs');
    for (const line of server.output.filter((r) => String(r.msg).startsWith('listening')))
      t.match(line, { store: redis.url });
    // Only the first worker serves HTTP; the second must not warn that a port is taken.
    t.equal(server.output.filter((r) => String(r.msg).startsWith('live view at')).length, 1);
    t.notOk(
      server.output.some((r) => String(r.msg).includes('is taken')),
      'no worker says the HTTP port is taken',
    );
  },
);
