import { pino } from 'pino';
import t from 'tap';
import { auditLog } from '../src/client/audit.js';
import type { ClientEvent } from '../src/client/types.js';
import { runClient } from '../src/client/run.js';
import { LineClient, readLog, startTestServer, unusedPort } from './fixtures/server.js';

// Fast timings: 20 ms ticks, switches every 200-400 ms, quick reconnects.
const FAST = {
  tickMs: 20,
  switchMinMs: 200,
  switchMaxMs: 400,
  backoffBaseMs: 50,
  backoffMaxMs: 400,
};
// The log has the server's clock, not the client's timers: allow for timer lateness and for a busy
// event loop at either end when many test files run at once.
const WINDOW = { minMs: 200, maxMs: 400, earlyMs: 50, lateMs: 100, graceMs: 100 };

/** A real client on 127.0.0.1 with a silent logger; `until` resolves on the nth matching event. */
function client(port: number, id = 'alice') {
  const events: ClientEvent[] = [];
  const waiters: Array<() => void> = [];
  const c = runClient({
    id,
    host: '127.0.0.1',
    port,
    ...FAST,
    quitTimeoutMs: 1000,
    logger: pino({ level: 'silent' }),
    onEvent: (e) => {
      events.push(e);
      for (const w of waiters.splice(0)) w();
    },
  });
  const count = (pred: (e: ClientEvent) => boolean) => events.filter(pred).length;
  const until = async (pred: (e: ClientEvent) => boolean, n = 1) => {
    while (count(pred) < n) await new Promise<void>((res) => waiters.push(res));
  };
  return { c, events, count, until };
}

const is = (type: ClientEvent['type'], line?: RegExp) => (e: ClientEvent) =>
  e.type === type && (line === undefined || ('line' in e && line.test(e.line)));

t.test('values and switches in the server log follow the rules', async (t) => {
  const srv = await startTestServer(t);
  const alice = client(srv.port);
  await alice.until(is('increment'), 5);
  alice.c.stop('test');
  const result = await alice.c.done;
  t.same({ code: result.code, reason: result.reason }, { code: 0, reason: 'server said BYE' });
  await srv.server.close(); // flushes the message log
  const audits = auditLog(await readLog(srv.logPath), WINDOW);
  t.equal(audits.length, 1);
  const [a] = audits;
  t.same(a?.problems, [], 'every VALUE is counter + increment mod 100; switches in the window');
  t.ok(a!.switches >= 5 && a!.values >= 50, `${a?.values} values, ${a?.switches} switches`);
  t.equal(a?.last, result.value, 'the last value the server has is the client last value');
  const gaps = a!.tickGaps;
  const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
  t.ok(mean > 18 && mean < 23, `mean tick gap ${mean.toFixed(1)} ms`);
});

t.test('BYE SHUTTING_DOWN: reconnects, says HELLO, continues from the server value', async (t) => {
  const first = await startTestServer(t);
  const alice = client(first.port);
  await alice.until(is('received', /^OK /), 5);
  await first.server.close();
  await alice.until(is('reconnecting'));
  const lastOk = alice.events.filter(is('received', /^OK /)).at(-1) as { line: string };
  const { statePath, logPath } = first;
  const second = await startTestServer(t, { port: first.port, statePath, logPath });
  await alice.until(is('connected'), 2);
  await alice.until(is('received', /^VALUE /), 2);
  const hello = alice.events.filter(is('received', /^VALUE /))[1] as { line: string };
  t.equal(hello.line, lastOk.line.replace('OK', 'VALUE'), 'HELLO answers the last value stored');
  await alice.until(is('sent', /^VALUE /), alice.count(is('sent', /^VALUE /)) + 3);
  alice.c.stop('test');
  t.equal((await alice.c.done).code, 0);
  await second.server.close();
  const audits = auditLog(await readLog(logPath), WINDOW);
  t.same(
    audits.map((a) => [a.id, a.problems]),
    [
      ['alice', []],
      ['alice', []],
    ],
    'both connections follow the rules; the second starts at increment 1',
  );
});

t.test('a refused connection is retried with backoff until the server is up', async (t) => {
  const port = await unusedPort();
  const alice = client(port);
  await alice.until(is('reconnecting'), 3);
  const delays = alice.events.flatMap((e) => (e.type === 'reconnecting' ? [e.delayMs] : []));
  t.ok(delays[0]! >= 25 && delays[0]! <= 50 && delays[2]! >= 100, `delays ${delays.join(', ')}`);
  await startTestServer(t, { port });
  await alice.until(is('received', /^VALUE /));
  alice.c.stop('test');
  t.equal((await alice.c.done).code, 0);
});

t.test('BYE TAKEN_OVER: exits 1 with the reason and never reconnects', async (t) => {
  const srv = await startTestServer(t);
  const alice = client(srv.port);
  await alice.until(is('received', /^OK /), 2);
  const thief = await LineClient.connect(t, srv.port);
  t.match(await thief.request('HELLO alice'), [/^VALUE \d+$/]);
  const result = await alice.c.done;
  t.equal(result.code, 1);
  t.match(result.reason, /^server said BYE TAKEN_OVER/);
  t.equal(alice.count(is('connecting')), 1, 'one connection attempt only');
  t.equal(alice.count(is('reconnecting')), 0);
});
