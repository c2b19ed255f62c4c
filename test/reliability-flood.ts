/**
 * Issue 4, item 7: floods. Connections beyond --max-clients get BYE SERVER_BUSY while the rest are
 * served; idle connections are closed after --idle-timeout-ms; a peer that opens and resets
 * thousands of connections leaves no leaked sockets, timers or memory behind.
 */
import t, { type Test } from 'tap';
import { connect } from 'node:net';
import { join } from 'node:path';
import { parseReply } from '../src/protocol/replies.js';
import {
  mib,
  parseLogText,
  pathArgs,
  procStats,
  RawClient,
  rng,
  startChild,
  testSeed,
  waitFor,
  within,
  acceptQueue,
} from './fixtures/reliability.js';
import { startTestServer, tempDir } from './fixtures/server.js';
import { readFileSync } from 'node:fs';

const MAX_CLIENTS = 50;
const OVER = 30;
const IDLE_TIMEOUT_MS = 300;
const STORM = 2_000;
const STORM_ROUNDS = 2;
const STORM_PARALLEL = 100;
/**
 * For the memory figure the child runs with a small heap, so GC keeps RSS close to live memory:
 * with default sizing RSS wanders by ±15 MiB between storms, with these by ±2 MiB.
 */
const LEAN_HEAP = ['--max-semi-space-size=2', '--max-old-space-size=64'];
/** A leak of 4 KB per connection over the measured 4,000 would add 15 MiB. */
const STORM_RSS_SLACK_MIB = 15;

t.setTimeout(90_000);

async function child(t: Test, extra: string[] = [], nodeOptions: string[] = []) {
  const dir = tempDir(t);
  const logPath = join(dir, 'messages.log');
  const args = [...pathArgs(join(dir, 'state.json'), logPath), ...extra];
  const server = await startChild(t, args, nodeOptions);
  return { server, logPath };
}

t.test(`more than --max-clients: BYE SERVER_BUSY, and the rest are served`, async (t) => {
  const { server, logPath } = await child(t, ['--max-clients', String(MAX_CLIENTS)]);
  const admitted = await Promise.all(
    Array.from({ length: MAX_CLIENTS }, async (_, i) => {
      const c = await RawClient.connect(server.port, t);
      await c.request(`HELLO flood-${i}`);
      return c;
    }),
  );
  t.ok(
    admitted.every((c) => c.lines[0] === 'VALUE 0'),
    `${MAX_CLIENTS} clients admitted and identified`,
  );
  const refused = await Promise.all(
    Array.from({ length: OVER }, async () => {
      const c = await RawClient.connect(server.port, t);
      c.send('PING\n');
      await within(5_000, 'an extra connection to be refused and closed', c.closed);
      return c;
    }),
  );
  const byes = refused.map((c) => parseReply(c.lines[0] ?? ''));
  t.ok(
    byes.every((r) => r?.kind === 'BYE' && r.code === 'SERVER_BUSY'),
    `each of ${OVER} extra connections got BYE SERVER_BUSY`,
  );
  t.ok(
    refused.every((c) => c.lines.length === 1 && c.tail === ''),
    'and nothing else: the PING they sent is not answered',
  );
  const answers = await Promise.all(admitted.map((c, i) => c.request(`VALUE ${i}`, 'PING')));
  t.same(
    answers,
    admitted.map((_, i) => [`OK ${i}`, 'PONG']),
    'every admitted client is still served',
  );

  // Room again once some leave: a newcomer is admitted (the server sees the closes in its own time).
  await Promise.all(admitted.slice(0, 10).map((c) => (c.socket.end(), c.closed)));
  let busy = 0;
  for (;;) {
    const c = await RawClient.connect(server.port, t);
    const [reply] = await c.request('PING').catch(() => ['(closed)']);
    if (reply === 'PONG') break;
    busy++;
    if (busy > 200) throw new Error(`still refused after ${busy} tries: ${reply}`);
  }
  t.pass(`a newcomer is admitted once clients left (${busy} refusals first)`);

  t.equal((await server.kill('SIGTERM')).code, 0);
  const { records } = parseLogText(readFileSync(logPath, 'utf8'));
  t.ok(
    records.filter((r) => r.event === 'refused' && r.reason === 'SERVER_BUSY').length >= OVER,
    'each refusal is in the log',
  );
});

t.test('idle connections are closed after --idle-timeout-ms; busy ones are not', async (t) => {
  const { server } = await child(t, ['--idle-timeout-ms', String(IDLE_TIMEOUT_MS)]);
  const started = performance.now();
  const idle = await RawClient.connect(server.port, t);
  const partial = await RawClient.connect(server.port, t);
  partial.send('HELLO half-a-li'); // an unterminated line is not activity forever
  const busy = await RawClient.connect(server.port, t);
  let pings = 0;
  const keepBusy = (async () => {
    while (!idle.isClosed || !partial.isClosed || pings < 10) {
      t.same(await busy.request('PING'), ['PONG']);
      pings++;
      await new Promise((resolve) => setTimeout(resolve, IDLE_TIMEOUT_MS / 3));
    }
  })();
  await within(5_000, 'the idle connection to be closed', idle.closed);
  const idleMs = performance.now() - started;
  await within(5_000, 'the half-line connection to be closed', partial.closed);
  await keepBusy;
  for (const c of [idle, partial]) {
    const reply = parseReply(c.lines[0] ?? '');
    t.ok(reply?.kind === 'BYE' && reply.code === 'IDLE_TIMEOUT', `BYE IDLE_TIMEOUT: ${c.lines[0]}`);
  }
  t.ok(
    idleMs >= IDLE_TIMEOUT_MS && idleMs < IDLE_TIMEOUT_MS + 1_000,
    `closed after ${idleMs.toFixed(0)} ms`,
  );
  t.notOk(busy.isClosed, `the busy connection is still open after ${pings} PINGs`);
  t.same(await busy.request('PING'), ['PONG']);
});

/** Opens `count` connections, `parallel` at a time; each sends a little, then resets. */
async function resetStorm(port: number, count: number, seed: number) {
  const random = rng(seed);
  let opened = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.on('error', () => {});
      socket.once('close', () => resolve());
      socket.once('connect', () => {
        const what = random();
        if (what < 0.3) socket.write(`HELLO storm-${random.int(10)}\nVALUE ${random.int(100)}\nPI`);
        else if (what < 0.5) socket.write('PING\n'.repeat(random.int(50)));
        // Sometimes before the server has seen a byte, sometimes after it answered.
        if (random() < 0.5) socket.resetAndDestroy();
        else setImmediate(() => socket.resetAndDestroy());
      });
    });
  await Promise.all(
    Array.from({ length: STORM_PARALLEL }, async () => {
      while (opened < count) {
        opened++;
        await one();
      }
    }),
  );
}

t.test('a reset storm against bin/server leaks no fds or memory', async (t) => {
  const seed = testSeed();
  t.comment(`seed ${seed}`);
  const { server } = await child(t, [], LEAN_HEAP);
  const probe = await RawClient.connect(server.port, t);
  t.same(await probe.request('PING'), ['PONG']);
  const before = procStats(server.pid);
  // Settled: nothing waits to be accepted and the fds are back to the idle set plus the probe.
  // A leaked socket (or any fd) never settles, and the wait fails naming the count.
  const settle = (what: string) =>
    waitFor(
      () => acceptQueue(server.port) === 0 && procStats(server.pid).fds <= before.fds,
      () => `${what}: fds ${procStats(server.pid).fds}, ${before.fds} before`,
    );
  // Warm up with a storm of the same size: the heap grows to its working size on first use (JIT,
  // pools, log buffers), so what is measured next is growth per connection, i.e. leaks.
  await resetStorm(server.port, STORM, seed);
  await settle('the warm-up to settle');
  const warm = procStats(server.pid);
  const started = performance.now();
  for (let round = 1; round <= STORM_ROUNDS; round++) {
    await resetStorm(server.port, STORM, seed + round);
  }
  const stormMs = performance.now() - started;
  const resets = STORM * STORM_ROUNDS;
  await settle(`the storm of ${resets} resets to settle`);
  t.same(await probe.request('PING'), ['PONG'], 'still serving');
  const after = procStats(server.pid);
  t.equal(after.fds, before.fds, `fds: ${before.fds} before, ${after.fds} after ${resets} resets`);
  const grown = mib(after.rssKiB - warm.rssKiB);
  t.ok(grown < STORM_RSS_SLACK_MIB, `RSS grew ${grown} MiB (${mib(warm.rssKiB)} MiB before)`);
  t.comment(
    `FIGURES flood: resets=${resets} in ${stormMs.toFixed(0)} ms, fds ${before.fds}->${after.fds}, ` +
      `rss ${mib(warm.rssKiB)}->${mib(after.rssKiB)} MiB`,
  );
  t.equal((await server.kill('SIGTERM')).code, 0);
});

/** process.getActiveResourcesInfo(), counted by type. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** No connection, timer or fs request in flight: what is left is what the server keeps. */
const quiet = () => {
  const r = resources();
  return !r.TCPSocketWrap && !r.Timeout && !r.FSReqPromise && !r.FSReqCallback;
};

t.test('a reset storm against the in-process server leaks no handles or timers', async (t) => {
  const { server, port } = await startTestServer(t);
  // Settled: nothing waits to be accepted, the server holds no connection, and no socket, timer
  // or fs request is active. A leaked socket or timer never settles: the wait fails naming it.
  const settle = (what: string) =>
    waitFor(
      () => acceptQueue(port) === 0 && server.connections === 0 && quiet(),
      () => `${what}: ${server.connections} connections, ${JSON.stringify(resources())}`,
    );
  await resetStorm(port, 100, 1);
  await settle('the warm-up to settle');
  const before = resources();
  await resetStorm(port, STORM, 2);
  await settle(`the storm of ${STORM} resets to settle`);
  const after = resources();
  t.same(after, before, `same active resources after ${STORM} resets: ${JSON.stringify(after)}`);
});
