import t from 'tap';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { failingDiskFs } from './fixtures/failing-fs.js';
import { redisMissing, startRedis } from './fixtures/redis.js';
import { LineClient, startTestServer, tempDir, type TestLike } from './fixtures/server.js';
import { fetchText, openEvents } from './http-events.js';
import { startServer, type ServerOptions } from '../src/server/server.js';
import { HTTP_DEFAULTS, TAIL_LINES_PER_UPDATE } from '../src/monitor/defaults.js';
import type { Snapshot } from '../src/monitor/wire.js';

const HTTP = { port: 0, required: true, maxViewers: HTTP_DEFAULTS.httpMaxViewers };

async function withHttp(t: TestLike, overrides: Partial<ServerOptions> = {}) {
  const s = await startTestServer(t, { http: HTTP, ...overrides });
  return { ...s, url: s.server.httpUrl! };
}

t.test('routes: the page, its modules, health; read-only; unknown paths and hosts', async (t) => {
  const { url } = await withHttp(t);
  const page = await fetchText(url);
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.headers['content-security-policy'], /script-src 'self'/);
  t.match(page.body, /<script type="module" src="\/web\/app.js">/);
  t.notMatch(page.body, /https?:\/\//, 'no external assets');
  const app = await fetchText(`${url}web/app.js`);
  t.equal(app.status, 200, 'the page module is built (npm run build)');
  t.match(app.headers['content-type'], /^text\/javascript/);
  t.match(app.body, /EventSource/);
  t.equal((await fetchText(`${url}style.css`)).status, 200);
  t.equal((await fetchText(`${url}healthz`)).body, 'ok\n');
  t.equal((await fetchText(`${url}readyz`)).status, 200);
  t.equal((await fetchText(`${url}nothing`)).status, 404);
  t.equal((await fetchText(`${url}web/../server.js`)).status, 404);
  const post = await fetchText(`${url}metrics`, { method: 'POST' });
  t.equal(post.status, 405, 'nothing over HTTP changes anything');
  t.equal(post.headers.allow, 'GET, HEAD');
  const rebound = await fetchText(`${url}api/clients`, { headers: { Host: 'evil.example:80' } });
  t.equal(rebound.status, 421, 'a loopback server answers loopback names only (DNS rebinding)');
  t.equal((await fetchText(`${url}api/clients?id=<b>`)).status, 400);
});

t.test('/api/clients: open clients, and a closed one with its reason', async (t) => {
  const { url, server } = await withHttp(t);
  const alice = await LineClient.connect(t, server.port);
  t.same(await alice.request('HELLO alice', 'VALUE 7'), ['VALUE 0', 'OK 7']);
  t.match(await alice.request('EVEN'), [/^EVEN \d+$/]);
  const bob = await LineClient.connect(t, server.port);
  t.same(await bob.request('HELLO bob', 'QUIT'), ['VALUE 0', 'BYE']);
  await bob.readToEnd();
  await once(bob.socket, 'close');
  while (server.monitor.closed.length === 0) await new Promise((r) => setImmediate(r));
  const reply = await fetchText(`${url}api/clients`);
  t.match(reply.headers['content-type'], /^application\/json/);
  const snapshot = JSON.parse(reply.body) as Snapshot;
  t.equal(snapshot.rates, 'since start', 'nobody watches: no sampler, lifetime rates');
  t.match(snapshot.totals, { connections: 1, ids: 1 });
  const a = snapshot.rows.find((r) => r.id === 'alice')!;
  t.match(a, { value: 7, closedAt: null, reason: null, remote: /^127\.0\.0\.1:\d+$/ });
  t.equal(a.increment! % 2, 0, 'the increment of its last EVEN');
  t.match(
    snapshot.rows.find((r) => r.id === 'bob'),
    { reason: 'QUIT', value: 0 },
  );
  const only = JSON.parse((await fetchText(`${url}api/clients?id=bob`)).body) as Snapshot;
  t.same(
    only.rows.map((r) => r.id),
    ['bob'],
  );
});

t.test(
  '/events: updates with rows, totals and a sampled tail; nothing runs unwatched',
  async (t) => {
    const { url, server } = await withHttp(t);
    t.notOk(server.monitor.tail.active, 'no tail is kept while nobody watches');
    const alice = await LineClient.connect(t, server.port);
    await alice.request('HELLO alice');
    const events = await openEvents(`${url}events`);
    t.teardown(() => events.close());
    t.equal(events.status, 200);
    t.match(events.raw(), /^retry: \d+\n\n/);
    const first = await events.next();
    t.match(first.rows, [{ id: 'alice', value: 0, history: [0] }], 'history on first sight');
    t.ok(server.monitor.tail.active);
    // A burst far faster than anyone reads: the tail keeps the newest lines and counts the rest.
    alice.send('PING\n'.repeat(200));
    await alice.read(200);
    const burst = await events.next((u) => u.tail.skipped > 0);
    t.equal(burst.tail.lines.length, TAIL_LINES_PER_UPDATE);
    t.match(burst.tail.lines.at(-1), /"dir":"out","line":"PONG"/);
    const later = await events.next((u) => u.rows[0]!.requestsPerSecond > 0);
    t.equal(later.rows[0]!.history, undefined, 'history is sent once per row');
    t.equal(JSON.parse((await fetchText(`${url}api/clients`)).body).rates, 'last 2 s');
    events.close();
    while (server.monitor.tail.active) await new Promise((r) => setTimeout(r, 10));
    t.equal(JSON.parse((await fetchText(`${url}api/clients`)).body).rates, 'since start');
  },
);

t.test('/events?id=: only that id, rows and tail', async (t) => {
  const { url, server } = await withHttp(t);
  const [alice, bob] = [
    await LineClient.connect(t, server.port),
    await LineClient.connect(t, server.port),
  ];
  await alice.request('HELLO alice');
  await bob.request('HELLO bob');
  const events = await openEvents(`${url}events?id=bob`);
  t.teardown(() => events.close());
  await events.next();
  await alice.request('PING');
  await bob.request('PING');
  const update = await events.next((u) => u.tail.lines.length > 0);
  t.same(
    update.rows.map((r) => r.id),
    ['bob'],
  );
  for (const line of update.tail.lines) t.match(line, /"id":"bob"/);
  t.equal((await fetchText(`${url}events?id=a%20b`)).status, 400);
});

t.test('at most --http-max-viewers event streams', async (t) => {
  const { url } = await withHttp(t, { http: { ...HTTP, maxViewers: 2 } });
  const a = await openEvents(`${url}events`);
  const b = await openEvents(`${url}events`);
  t.teardown(() => (a.close(), b.close()));
  const refused = await fetchText(`${url}events`);
  t.equal(refused.status, 503);
  t.equal(refused.headers['retry-after'], '10');
  a.close();
  await b.next(); // the server has handled a's close by its next tick, or soon after
  let again;
  while ((again = await openEvents(`${url}events`)).status !== 200) again.close();
  again.close();
  t.pass('a slot frees when a viewer leaves');
});

t.test('the default HTTP port taken: the server runs without HTTP', async (t) => {
  const holder = createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.teardown(() => holder.close());
  const port = (holder.address() as { port: number }).port;
  const { server } = await startTestServer(t, { http: { ...HTTP, port, required: false } });
  t.equal(server.httpUrl, null);
  const c = await LineClient.connect(t, server.port);
  t.same(await c.request('PING'), ['PONG'], 'the TCP side serves');
});

t.test(
  'an asked-for HTTP port taken: startup fails, and frees the TCP port and the lock',
  async (t) => {
    const holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    t.teardown(() => holder.close());
    const port = (holder.address() as { port: number }).port;
    const dir = tempDir(t);
    const paths = { statePath: `${dir}/state.json`, logPath: `${dir}/messages.log` };
    await t.rejects(
      startServer({ host: '127.0.0.1', port: 0, ...paths, http: { ...HTTP, port } }),
      /HTTP port \d+: .*EADDRINUSE/,
    );
    const { server } = await startTestServer(t, { ...paths, http: HTTP });
    t.ok(server.httpUrl, 'the same state starts: nothing was left locked');
  },
);

t.test('/readyz: 503 while stopping', async (t) => {
  const { url, server } = await withHttp(t);
  // A peer that never closes its side holds the stop open (it lingers for our FIN to be read).
  const peer = connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
  await once(peer, 'connect');
  peer.on('data', () => {});
  const hello = once(peer, 'data');
  peer.write('HELLO carol\n');
  await hello;
  const stopped = server.close();
  const ready = await fetchText(`${url}readyz`);
  t.equal(ready.status, 503);
  t.equal(ready.body, 'not ready: stopping\n');
  t.equal((await fetchText(`${url}healthz`)).status, 200, 'still serving');
  peer.destroy();
  await stopped;
  await t.rejects(fetchText(`${url}healthz`), /ECONNREFUSED/, 'closed with the server');
});

t.test(
  '/readyz: 503 while the disk refuses writes, 200 once a commit succeeds again',
  async (t) => {
    const { fs, control } = failingDiskFs();
    const { url, server } = await withHttp(t, { storeFs: fs });
    const c = await LineClient.connect(t, server.port);
    await c.request('HELLO dave');
    control.failing = true;
    t.match(await c.request('VALUE 3'), [/^ERR STORAGE /]);
    const down = await fetchText(`${url}readyz`);
    t.equal(down.status, 503);
    t.equal(down.body, 'not ready: the last commit failed\n');
    control.failing = false;
    t.same(await c.request('VALUE 4'), ['OK 4']);
    t.equal((await fetchText(`${url}readyz`)).status, 200);
  },
);

t.test(
  '/readyz with the Redis store: 503 while Redis is down, 200 once a write succeeds again',
  { skip: redisMissing() },
  async (t) => {
    const redis = await startRedis(t);
    const { url, server } = await withHttp(t, {
      redis: { url: redis.url, waitReplicas: 0, allowVolatile: false, timeoutMs: 2_000 },
    });
    const c = await LineClient.connect(t, server.port);
    t.same(await c.request('HELLO erin', 'VALUE 5'), ['VALUE 0', 'OK 5']);
    t.ok(server.monitor.commits >= 1, 'the writes count as commits (the commit metrics)');
    t.equal((await fetchText(`${url}readyz`)).status, 200);
    await redis.kill9();
    t.match(await c.request('VALUE 6'), [/^ERR STORAGE /]);
    const down = await fetchText(`${url}readyz`);
    t.equal(down.status, 503);
    t.equal(down.body, 'not ready: the last commit failed\n');
    await redis.restart();
    let reply: string[] = [];
    for (let i = 0; i < 100 && reply[0] !== 'OK 7'; i++) {
      reply = await c.request('VALUE 7');
      if (reply[0] !== 'OK 7') await new Promise((r) => setTimeout(r, 50));
    }
    t.same(reply, ['OK 7'], 'the server reconnected by itself');
    t.equal((await fetchText(`${url}readyz`)).status, 200);
  },
);
