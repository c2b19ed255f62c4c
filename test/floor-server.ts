import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './fixtures/child.js';
import { LineClient, readLog, tempDir } from './fixtures/server.js';

/**
 * bench/floor-server.mjs bounds what any design could reach, so it must keep the promise it
 * stands for, or its figures flatter it: each reply to HELLO or VALUE leaves only once its request
 * line is in the file, and every line in both directions gets its record.
 */
for (const commit of ['async', 'blocking']) {
  t.test(
    `the floor (--commit ${commit}) logs every line, each request before its reply`,
    async (t) => {
      const logPath = join(tempDir(t), 'messages.log');
      const child = spawn(
        process.execPath,
        [join(ROOT, 'bench/floor-server.mjs'), '--log', logPath, '--commit', commit],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      t.teardown(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      const [first] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const { port } = JSON.parse(first) as { port: number };

      const loggedIn = async () =>
        (await readLog(logPath)).filter((r) => r.dir === 'in').map((r) => r.line);
      const client = await LineClient.connect(t, port);
      // One read of four requests: one commit answers them all, in order.
      client.send('HELLO a<b>\nVALUE 5\nEVEN\nVALUE 6\n');
      t.equal((await client.read())[0], 'VALUE 0');
      t.same(await loggedIn(), ['HELLO a<b>', 'VALUE 5', 'EVEN', 'VALUE 6']);
      const [ok5, even, ok6] = await client.read(3);
      t.same([ok5, ok6], ['OK 5', 'OK 6']);
      t.match(even, /^EVEN \d*[02468]$/);
      // Requests in separate reads, the second likely while the first one's commit runs.
      client.send('VALUE 7\n');
      client.send('VALUE 8\n');
      t.equal((await client.read())[0], 'OK 7');
      t.ok((await loggedIn()).includes('VALUE 7'), 'VALUE 7 was in the file before OK 7');
      t.equal((await client.read())[0], 'OK 8');
      t.ok((await loggedIn()).includes('VALUE 8'), 'VALUE 8 was in the file before OK 8');

      const again = await LineClient.connect(t, port);
      t.same(await again.request('HELLO a<b>'), ['VALUE 8'], 'the last value, to a new connection');

      child.kill('SIGTERM');
      await once(child, 'exit');
      const records = await readLog(logPath);
      const lines = (dir: string, conn: number) =>
        records.filter((r) => r.dir === dir && r.conn === conn).map((r) => r.line);
      t.same(lines('in', 1), ['HELLO a<b>', 'VALUE 5', 'EVEN', 'VALUE 6', 'VALUE 7', 'VALUE 8']);
      t.same(lines('out', 1), ['VALUE 0', 'OK 5', even, 'OK 6', 'OK 7', 'OK 8']);
      t.same(lines('out', 2), ['VALUE 8']);
      t.ok(
        records.every((r) => r.level === 30 && typeof r.time === 'number'),
        "in Parity's record shape",
      );
      t.same(
        records.filter((r) => r.conn === 1 && r.line !== 'HELLO a<b>').map((r) => r.id),
        Array(11).fill('a<b>'),
        'bound to the id once known',
      );
    },
  );
}
