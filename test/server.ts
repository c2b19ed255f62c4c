import t from 'tap';
import { once } from 'node:events';
import { existsSync, promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { failingDiskFs, overrideHandle } from './fixtures/failing-fs.js';
import { LineClient, readLog, startTestServer, tempDir, testRedis } from './fixtures/server.js';
import { parseReply } from '../src/protocol/replies.js';
import { startServer } from '../src/server/server.js';
import { readDurable } from '../src/store/recover.js';
import { StateFileError } from '../src/store/state-file.js';

/** Tests of the file store itself (its files, lock and disk faults): not run again on Redis. */
const fileOnly = { skip: testRedis() ? 'the file store only: this run is on Redis' : false };

t.test('a session: every verb, any case, blank lines get nothing', async (t) => {
  const { port } = await startTestServer(t);
  const c = await LineClient.connect(t, port);
  t.same(await c.request('PING', 'ping'), ['PONG', 'PONG']);
  c.send('\n   \n\t\n');
  t.same(await c.request('VALUE 5'), ['ERR NOT_IDENTIFIED say HELLO <id> first']);
  t.same(await c.request('Hello alice'), ['VALUE 0']);
  t.same(await c.request('VALUE 5', 'value 6'), ['OK 5', 'OK 6']);
  t.same(await c.request('HELLO alice'), ['VALUE 6'], 'HELLO again with the same id');
  t.match(await c.request('HELLO bob'), [/^ERR ALREADY_IDENTIFIED /]);
  t.match(await c.request('FROB', 'EVEN 5', 'VALUE 07', 'HELLO a/b'), [
    /^ERR UNKNOWN_COMMAND "FROB"/,
    /^ERR BAD_ARGS /,
    /^ERR BAD_ARGS /,
    /^ERR BAD_ARGS usage: HELLO <id>/,
  ]);
  t.match(await c.request('HELP'), [/^HELP commands: HELLO <id>, VALUE <n>/]);
  t.same(await c.request('QUIT'), ['BYE']);
  t.same(await c.readToEnd(), [], 'the server closes after BYE');
});

t.test('EVEN and ODD work before HELLO and stay in range', async (t) => {
  const { port } = await startTestServer(t);
  const c = await LineClient.connect(t, port);
  const evens = await c.request(...Array<string>(200).fill('EVEN'));
  const odds = await c.request(...Array<string>(200).fill('odd'));
  const ns = (lines: string[]) =>
    lines.map((l) => parseReply(l)).map((r) => (r && 'value' in r ? r.value : -1));
  t.ok(
    ns(evens).every((n) => n % 2 === 0 && n >= 0 && n <= 98),
    'even 0-98',
  );
  t.ok(
    ns(odds).every((n) => n % 2 === 1 && n >= 1 && n <= 99),
    'odd 1-99',
  );
  t.ok(new Set(ns(evens)).size > 20, 'spread over the range');
});

t.test('the extreme values come out of EVEN/ODD with an injected random source', async (t) => {
  let next = 0;
  const { port } = await startTestServer(t, { random: () => next });
  const c = await LineClient.connect(t, port);
  t.same(await c.request('EVEN', 'ODD'), ['EVEN 0', 'ODD 1']);
  next = 0.999999999;
  t.same(await c.request('EVEN', 'ODD'), ['EVEN 98', 'ODD 99']);
});

t.test('pipelined requests in one write are answered in order', async (t) => {
  const { port } = await startTestServer(t);
  const c = await LineClient.connect(t, port);
  const lines = [
    'HELLO p',
    ...Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? 'PING' : `VALUE ${i % 100}`)),
  ];
  const replies = await c.request(...lines);
  t.equal(replies[0], 'VALUE 0');
  lines.slice(1).forEach((l, i) => {
    const want = l === 'PING' ? 'PONG' : l.replace('VALUE', 'OK');
    if (replies[i + 1] !== want) t.fail(`reply ${i + 1}: ${replies[i + 1]} for ${l}`);
  });
  t.pass('300 replies in request order');
});

t.test('OK means a restart would find the value (checkpoint plus journal, or Redis)', async (t) => {
  const { port, stored } = await startTestServer(t);
  const c = await LineClient.connect(t, port);
  await c.request('HELLO alice');
  for (let n = 0; n < 20; n++) {
    await c.request(`VALUE ${n}`);
    t.equal(await stored('alice'), n);
  }
});

t.test('half-close: every reply arrives, an unterminated last line counts', async (t) => {
  const { port } = await startTestServer(t);
  const c = await LineClient.connect(t, port);
  c.socket.end('HELLO h\r\nVALUE 5\nPING');
  t.same(await c.readToEnd(), ['VALUE 0', 'OK 5', 'PONG']);
});

t.test('takeover: the new connection wins and sees every acknowledged value', async (t) => {
  const { port, logPath, server } = await startTestServer(t);
  const a = await LineClient.connect(t, port);
  t.same(await a.request('HELLO alice', 'VALUE 41', 'VALUE 42'), ['VALUE 0', 'OK 41', 'OK 42']);
  const b = await LineClient.connect(t, port);
  t.same(await b.request('HELLO alice'), ['VALUE 42']);
  t.match(await a.readToEnd(), [/^BYE TAKEN_OVER /]);
  t.same(await b.request('VALUE 43'), ['OK 43'], 'the new connection goes on');
  await server.close();
  const closes = (await readLog(logPath)).filter((r) => r.event === 'close');
  t.ok(
    closes.some((r) => r.reason === 'TAKEN_OVER' && r.id === 'alice'),
    'the log shows the takeover',
  );
});

t.test('takeover: values the old connection sent before are answered, then BYE', async (t) => {
  const { port } = await startTestServer(t);
  const a = await LineClient.connect(t, port);
  await a.request('HELLO t');
  a.send('VALUE 1\nVALUE 2\nVALUE 3\n');
  await a.read(3);
  const b = await LineClient.connect(t, port);
  t.same(await b.request('HELLO t'), ['VALUE 3']);
  t.match(await a.readToEnd(), [/^BYE TAKEN_OVER/]);
});

t.test('a line of exactly the limit is served, one byte more is BYE LINE_TOO_LONG', async (t) => {
  const { port } = await startTestServer(t, { limits: { maxLineBytes: 32 } });
  const c = await LineClient.connect(t, port);
  t.match(await c.request('PING' + ' '.repeat(28)), ['PONG'], '32 bytes');
  t.match(await c.request('PING' + ' '.repeat(28) + '\r'), ['PONG'], '32 bytes + CRLF');
  c.send('PING\nPING' + ' '.repeat(29) + '\nPING\n');
  const rest = await c.readToEnd();
  t.equal(rest.length, 2);
  t.equal(rest[0], 'PONG', 'the line before is answered');
  t.match(rest[1], /^BYE LINE_TOO_LONG /);
});

t.test('a long line with no LF is cut off without waiting for one', async (t) => {
  const { port } = await startTestServer(t, { limits: { maxLineBytes: 64 } });
  const c = await LineClient.connect(t, port);
  c.send('x'.repeat(100_000));
  t.match(await c.readToEnd(), [/^BYE LINE_TOO_LONG/]);
});

t.test('idle connections get BYE IDLE_TIMEOUT', async (t) => {
  const { port } = await startTestServer(t, { limits: { idleTimeoutMs: 150 } });
  const c = await LineClient.connect(t, port);
  t.same(await c.request('PING'), ['PONG']);
  t.match(await c.readToEnd(), [/^BYE IDLE_TIMEOUT /]);
});

t.test('beyond max clients: BYE SERVER_BUSY at accept, the rest are served', async (t) => {
  const { port, server } = await startTestServer(t, { limits: { maxClients: 2 } });
  const a = await LineClient.connect(t, port);
  const b = await LineClient.connect(t, port);
  t.same(await a.request('PING'), ['PONG']);
  const c = await LineClient.connect(t, port);
  t.match(await c.readToEnd(), [/^BYE SERVER_BUSY /]);
  t.same(await b.request('PING'), ['PONG']);
  t.equal(server.connections, 2);
  await a.request('QUIT');
  await a.readToEnd();
  while (server.connections > 1) await new Promise((r) => setImmediate(r));
  const d = await LineClient.connect(t, port);
  t.same(await d.request('PING'), ['PONG'], 'a freed slot is reused');
});

t.test('a peer that never reads is held to the output cap, then dropped', async (t) => {
  const { port, server, logPath } = await startTestServer(t, {
    limits: { outputCapBytes: 4096, drainTimeoutMs: 200 },
  });
  const c = await LineClient.connect(t, port);
  c.socket.pause();
  c.socket.on('error', () => {}); // the server resets us, which is the point
  const closed = new Promise((r) => c.socket.once('close', r));
  const chunk = 'HELP\n'.repeat(20_000); // 5 bytes in, ~80 out: fills buffers fast
  // Keep writing until the server drops us; bounded so a broken server fails the test instead.
  for (let sent = 0; sent < 200_000_000 && !c.socket.destroyed; sent += chunk.length) {
    if (!c.socket.write(chunk))
      await Promise.race([new Promise((r) => c.socket.once('drain', r)), closed]);
  }
  await closed;
  while (server.connections > 0) await new Promise((r) => setImmediate(r));
  await server.close();
  const closes = (await readLog(logPath)).filter((r) => r.event === 'close');
  t.same(
    closes.map((r) => r.reason),
    ['drain timeout'],
  );
  const out = (await readLog(logPath)).filter((r) => r.dir === 'out').length;
  t.ok(out < 10_000_000 / 5, `the server stopped reading after ${out} replies`);
});

t.test('close(): no new connections, earlier requests answered, BYE SHUTTING_DOWN', async (t) => {
  const { port, server, stored } = await startTestServer(t);
  const c = await LineClient.connect(t, port);
  c.send('HELLO s\nVALUE 9\n');
  await c.read(1);
  const closing = server.close();
  const rest = await c.readToEnd();
  t.same(rest.slice(0, 1), ['OK 9']);
  t.match(rest[1], /^BYE SHUTTING_DOWN /);
  await closing;
  t.equal(await stored('s'), 9);
});

t.test('the message log: one record per line each way, with conn, id, dir, line', async (t) => {
  const { port, server, logPath } = await startTestServer(t);
  const c = await LineClient.connect(t, port);
  for (const line of ['HELLO logme', 'VALUE 3', 'BOGUS\x1b[2J"', 'QUIT']) await c.request(line);
  await c.readToEnd();
  await server.close();
  const records = await readLog(logPath);
  const lines = records
    .filter((r) => r.dir !== undefined)
    .map((r) => [r.dir, r.id ?? null, r.line]);
  t.same(lines, [
    ['in', null, 'HELLO logme'],
    ['out', 'logme', 'VALUE 0'],
    ['in', 'logme', 'VALUE 3'],
    ['out', 'logme', 'OK 3'],
    ['in', 'logme', 'BOGUS\x1b[2J"'],
    ['out', 'logme', 'ERR UNKNOWN_COMMAND "BOGUS?[2J""; try HELP'],
    ['in', 'logme', 'QUIT'],
    ['out', 'logme', 'BYE'],
  ]);
  t.ok(records.every((r) => typeof r.time === 'number' && typeof r.conn === 'number'));
  const text = readFileSync(logPath, 'utf8');
  const raw = [...text].filter((ch) => ch !== '\n' && ch.charCodeAt(0) < 0x20);
  t.same(raw, [], 'control characters are escaped');
  const open = records.find((r) => r.event === 'open');
  t.match(open, { remote: /^127\.0\.0\.1:\d+$/ });
  t.match(
    records.find((r) => r.event === 'close'),
    { reason: 'quit', id: 'logme', remote: open?.remote },
  );
});

t.test(
  'a failing disk: ERR STORAGE, never a false OK; other commands work; it recovers',
  fileOnly,
  async (t) => {
    const { fs: storeFs, control } = failingDiskFs();
    const { port, statePath } = await startTestServer(t, { storeFs });
    const c = await LineClient.connect(t, port);
    t.same(await c.request('HELLO d', 'VALUE 1'), ['VALUE 0', 'OK 1']);
    control.failing = true;
    t.match(await c.request('VALUE 2', 'PING', 'EVEN'), [
      /^ERR STORAGE .*ENOSPC/,
      'PONG',
      /^EVEN \d+$/,
    ]);
    t.match(await c.request('HELLO d'), [/^ERR STORAGE /], 'no unconfirmed value is reported');
    t.same(Object.fromEntries(await readDurable(statePath)), { d: 1 });
    control.failing = false;
    t.same(await c.request('VALUE 3'), ['OK 3'], 'recovers without a restart');
    t.same(Object.fromEntries(await readDurable(statePath)), { d: 3 });
  },
);

t.test(
  'close(): a reply stuck behind a slow disk is cut off at the shutdown timeout',
  fileOnly,
  async (t) => {
    let slow = false;
    let stuck!: () => void;
    const writeStuck = new Promise<void>((r) => (stuck = r));
    const storeFs = {
      ...fsp,
      open: (async (...args: Parameters<typeof fsp.open>) => {
        const handle = await fsp.open(...args);
        if (!String(args[0]).includes('.journal.')) return handle;
        return overrideHandle(handle, {
          datasync: async () => {
            if (slow) {
              stuck();
              await new Promise((r) => setTimeout(r, 1_500));
            }
            return handle.datasync();
          },
        });
      }) as typeof fsp.open,
    };
    const { port, server, logPath, statePath } = await startTestServer(t, {
      storeFs,
      limits: { shutdownTimeoutMs: 200 },
    });
    const c = await LineClient.connect(t, port);
    t.same(await c.request('HELLO slow'), ['VALUE 0']);
    slow = true;
    c.send('VALUE 8\n');
    await writeStuck; // the commit carrying 8 is now stuck in the journal's fdatasync
    const started = Date.now();
    const closing = server.close();
    t.same(await c.readToEnd(), [], 'no OK for a value that was not yet durable, and no BYE');
    t.ok(Date.now() - started < 1_000, 'the peer was cut off at the timeout, not after the disk');
    await closing;
    const closes = (await readLog(logPath)).filter((r) => r.event === 'close');
    t.same(
      closes.map((r) => r.reason),
      ['shutdown timeout'],
    );
    t.same(JSON.parse(readFileSync(statePath, 'utf8')), { slow: 8 }, 'the final write still lands');
  },
);

t.test(
  'one server per state file: a second is refused and changes nothing',
  fileOnly,
  async (t) => {
    const first = await startTestServer(t);
    const c = await LineClient.connect(t, first.port);
    t.same(await c.request('HELLO one', 'VALUE 4'), ['VALUE 0', 'OK 4']);
    const temp = `${first.statePath}.tmp-999999-1`; // an unfinished write the first server owns
    await fsp.writeFile(temp, '{}');
    await t.rejects(
      startServer({ port: 0, statePath: first.statePath, logPath: `${first.logPath}.2` }),
      { message: new RegExp(`in use by another Parity server \\(pid ${process.pid}\\)`) },
    );
    t.ok(existsSync(temp), 'the refused server did not clean the first one’s files');
    t.same(await c.request('VALUE 5'), ['OK 5'], 'the first server carries on');
    await first.server.close();
    const second = await startTestServer(t, { statePath: first.statePath });
    const d = await LineClient.connect(t, second.port);
    t.same(await d.request('HELLO one'), ['VALUE 5'], 'once it has stopped, the file is free');
  },
);

t.test('a start that fails after taking the lock releases it', fileOnly, async (t) => {
  const dir = tempDir(t);
  const statePath = join(dir, 'state.json');
  const logPath = join(dir, 'messages.log');
  const busy = createServer().listen(0, '127.0.0.1');
  await once(busy, 'listening');
  t.teardown(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  await t.rejects(startServer({ host: '127.0.0.1', port, statePath, logPath }), {
    code: 'EADDRINUSE',
  });
  writeFileSync(statePath, '{"a": 100}');
  await t.rejects(startServer({ port: 0, statePath, logPath }), StateFileError);
  writeFileSync(statePath, '{"a": 1}');
  const s = await startTestServer(t, { statePath, logPath });
  const c = await LineClient.connect(t, s.port);
  t.same(await c.request('HELLO a'), ['VALUE 1'], 'the third start gets the file');
});

t.test(
  'requests pipelined behind a HELLO refused with ID_LIMIT see the connection as before',
  async (t) => {
    const { port, stored } = await startTestServer(t, { limits: { maxIds: 1 } });
    const a = await LineClient.connect(t, port);
    t.same(await a.request('HELLO alice', 'VALUE 5'), ['VALUE 0', 'OK 5']);
    const b = await LineClient.connect(t, port);
    // The file store refuses bob at once (NOT_IDENTIFIED after); Redis only once it answers, so
    // the VALUE sent meanwhile is refused for the same reason. Either way nothing is stored.
    // A HELLO after it, and a VALUE after that, in the same write: the VALUE is for alice.
    t.match(await b.request('HELLO bob', 'VALUE 6', 'PING', 'HELLO alice', 'VALUE 7'), [
      /^ERR ID_LIMIT /,
      /^ERR (NOT_IDENTIFIED|ID_LIMIT) /,
      'PONG',
      'VALUE 5',
      'OK 7',
    ]);
    t.match(await a.readToEnd(), [/^BYE TAKEN_OVER/], 'alice was taken over, as by any HELLO');
    t.equal(await stored('alice'), 7);
    t.equal(await stored('bob'), undefined);
  },
);
