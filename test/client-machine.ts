import t from 'tap';
import type { Clock } from '../src/clock.js';
import type { Connection, ConnectionEvents } from '../src/client/connection.js';
import { CLIENT_DEFAULTS } from '../src/client/defaults.js';
import type { ClientEvent, ClientOptions } from '../src/client/types.js';
import { Client } from '../src/client/machine.js';
import { FakeClock, seededRandom } from './fixtures/fake-clock.js';

/** An in-memory connection: records what the client sends, with the time it was sent. */
class FakeConn implements Connection {
  readonly sent: { at: number; line: string }[] = [];
  closed = false;
  /** When set, answers EVEN/ODD after `latency` ms, as a server would. */
  answer: ((line: string) => string | null) | null = null;
  constructor(
    readonly events: ConnectionEvents,
    readonly clock: Clock,
    readonly latency: number,
  ) {}
  send(line: string): void {
    this.sent.push({ at: this.clock.now(), line });
    const reply = this.answer?.(line) ?? null;
    if (reply !== null)
      this.clock.setTimeout(() => this.closed || this.events.onLine(reply), this.latency);
  }
  close(): void {
    this.closed = true;
  }
  lines(prefix = ''): string[] {
    return this.sent.map((s) => s.line).filter((l) => l.startsWith(prefix));
  }
}

function harness(options: Partial<ClientOptions> = {}, clock: Clock = new FakeClock(), seed = 1) {
  const events: ClientEvent[] = [];
  const conns: FakeConn[] = [];
  const random = seededRandom(seed);
  const client = new Client(
    {
      id: 'alice',
      tickMs: CLIENT_DEFAULTS.tickMs,
      switchMinMs: CLIENT_DEFAULTS.switchMinMs,
      switchMaxMs: CLIENT_DEFAULTS.switchMaxMs,
      backoffBaseMs: CLIENT_DEFAULTS.backoffBaseMs,
      backoffMaxMs: CLIENT_DEFAULTS.backoffMaxMs,
      quitTimeoutMs: CLIENT_DEFAULTS.quitTimeoutMs,
      ...options,
    },
    {
      clock,
      random,
      connect: (ev) => {
        const conn = new FakeConn(ev, clock, 5);
        conns.push(conn);
        return conn;
      },
      emit: (e) => events.push(e),
    },
  );
  const conn = () => conns[conns.length - 1]!;
  /** Opens the current connection and answers its HELLO with VALUE n. */
  const hello = (n: number) => {
    conn().events.onOpen();
    conn().events.onLine(`VALUE ${n}`);
  };
  // A server stand-in: EVEN 2k / ODD 2k+1 with k drawn from its own seeded source.
  const serverRandom = seededRandom(seed + 1000);
  const autoAnswer = () => {
    conn().answer = (line) => {
      const k = Math.floor(serverRandom() * 50);
      return line === 'EVEN' ? `EVEN ${2 * k}` : line === 'ODD' ? `ODD ${2 * k + 1}` : null;
    };
  };
  const delays = () => events.flatMap((e) => (e.type === 'reconnecting' ? [e.delayMs] : []));
  return { client, events, conns, conn, hello, autoAnswer, delays };
}

/**
 * Replays the client's events as the rules say they must be: the counter starts at each HELLO's
 * VALUE with increment 1, an EVEN/ODD reply sets the increment, and each VALUE sent is
 * counter + increment mod 100. Returns the violations.
 */
function replay(events: ClientEvent[]): string[] {
  const problems: string[] = [];
  let counter = NaN;
  let increment = 1;
  for (const e of events) {
    const [kind, arg] = 'line' in e ? e.line.split(' ') : [];
    if (e.type === 'received' && kind === 'VALUE') [counter, increment] = [Number(arg), 1];
    if (e.type === 'received' && (kind === 'EVEN' || kind === 'ODD')) increment = Number(arg);
    if (e.type === 'sent' && kind === 'VALUE') {
      counter = (counter + increment) % 100;
      if (Number(arg) !== counter) problems.push(`sent VALUE ${arg}, expected ${counter}`);
    }
  }
  return problems;
}

t.test('connects, says HELLO, starts at the server value with increment 1', async (t) => {
  const clock = new FakeClock();
  const h = harness({}, clock);
  void h.client.start();
  t.same(h.conn().sent, [], 'nothing before the connection opens');
  h.hello(41);
  t.same(h.conn().lines(), ['HELLO alice']);
  clock.advance(1000);
  t.same(h.conn().lines('VALUE'), ['VALUE 42', 'VALUE 43']);
  t.equal(h.client.value, 43);
});

t.test('1,000 ticks on a late clock: one VALUE per grid slot, mean gap 500 ms', async (t) => {
  const fake = new FakeClock();
  const random = seededRandom(3);
  const late: Clock = {
    now: () => fake.now(),
    setTimeout: (fn, ms) => fake.setTimeout(fn, ms + Math.floor(random() * 300)),
    clearTimeout: (h) => fake.clearTimeout(h),
  };
  const h = harness({}, late);
  void h.client.start();
  h.autoAnswer();
  const origin = fake.now();
  h.hello(0);
  fake.advance(1000 * 500 + 350);
  const ticks = h.conn().sent.filter((s) => s.line.startsWith('VALUE'));
  t.equal(ticks.length, 1000);
  const off = ticks.filter(
    (s, i) => s.at < origin + (i + 1) * 500 || s.at >= origin + (i + 1) * 500 + 300,
  );
  t.same(off, [], 'tick k is sent within its slot, however late the timer');
  const mean = (ticks[999]!.at - ticks[0]!.at) / 999;
  t.ok(Math.abs(mean - 500) < 1, `mean gap ${mean.toFixed(2)} ms`);
});

t.test('switches: delays in [3000, 5000] and spread; EVEN and ODD both chosen', async (t) => {
  const clock = new FakeClock();
  const h = harness({}, clock, 11);
  void h.client.start();
  h.autoAnswer();
  h.hello(17);
  clock.advance(4 * 3600_000);
  const helloAt = h.conn().sent[0]!.at;
  const switches = h.conn().sent.filter((s) => s.line === 'EVEN' || s.line === 'ODD');
  const gaps = switches.map((s, i) => s.at - (i === 0 ? helloAt : switches[i - 1]!.at));
  t.ok(switches.length > 3000, `${switches.length} switches`);
  t.same(
    gaps.filter((g) => g < 3000 || g > 5000),
    [],
    'every delay within the window',
  );
  const quarters = [0, 0, 0, 0];
  for (const g of gaps) quarters[Math.min(3, Math.floor((g - 3000) / 500))]!++;
  t.ok(
    quarters.every((q) => q > gaps.length * 0.2),
    `spread over the window: ${quarters.join(' / ')}`,
  );
  const even = switches.filter((s) => s.line === 'EVEN').length / switches.length;
  t.ok(even > 0.45 && even < 0.55, `EVEN ${(even * 100).toFixed(1)}% of switches`);
  t.same(replay(h.events), [], 'every value follows counter + increment mod 100');
  const inRange = h
    .conn()
    .lines('VALUE')
    .every((l) => /^VALUE (0|[1-9][0-9]?)$/.test(l));
  t.ok(inRange, 'every value in 0-99');
});

t.test('the increment changes only on the reply, from the next tick on', async (t) => {
  const clock = new FakeClock();
  const h = harness({ switchMinMs: 1200, switchMaxMs: 1200 }, clock);
  void h.client.start();
  h.hello(10);
  clock.advance(1200);
  const [v11, v12, asked] = h.conn().lines().slice(1);
  t.same([v11, v12], ['VALUE 11', 'VALUE 12']);
  t.match(asked, /^(EVEN|ODD)$/, 'the switch is sent at 1200 ms');
  clock.advance(1000);
  t.same(h.conn().lines('VALUE').slice(2), ['VALUE 13', 'VALUE 14'], 'still +1 with no reply');
  const increment = asked === 'EVEN' ? 40 : 41;
  h.conn().events.onLine(`${asked} ${increment}`);
  t.equal(h.conn().lines('VALUE').length, 4, 'the reply sends nothing by itself');
  clock.advance(500);
  t.same(h.conn().lines('VALUE').slice(4), [`VALUE ${14 + increment}`]);
  t.same(replay(h.events), []);
});

t.test('each connection starts afresh: increment 1, switch timer restarted', async (t) => {
  const clock = new FakeClock();
  const h = harness({ switchMinMs: 1000, switchMaxMs: 1000 }, clock, 5);
  void h.client.start();
  const origin = clock.now();
  h.hello(0);
  clock.advance(1000);
  const first = h.conn();
  const asked = first.lines()[2]!;
  const increment = asked === 'EVEN' ? 32 : 33;
  first.events.onLine(`${asked} ${increment}`);
  clock.advance(700); // the tick at 1500 used the new increment; the next switch is due at 2000
  first.events.onClose('ECONNRESET');
  t.ok(first.closed);
  clock.advance(h.delays()[0]!);
  t.equal(h.conns.length, 2, 'reconnected after the backoff delay');
  h.hello(50);
  const helloAt = clock.now();
  clock.advance(1000);
  // At 1000 ms the switch and the tick fall due together; the switch timer is older.
  t.same(
    first.lines(),
    ['HELLO alice', 'VALUE 1', asked, 'VALUE 2', `VALUE ${2 + increment}`],
    'nothing more on the old connection',
  );
  const second = h.conn();
  t.equal(second.lines()[0], 'HELLO alice', 'HELLO again');
  t.equal(second.lines('VALUE')[0], 'VALUE 51', 'continues from the server value, increment 1');
  const sw = second.sent.find((s) => s.line === 'EVEN' || s.line === 'ODD');
  t.equal(sw?.at, helloAt + 1000, 'the switch timer restarted at HELLO');
  const ticks = second.sent.filter((s) => s.line.startsWith('VALUE')).map((s) => s.at - origin);
  const next = (Math.floor((helloAt - origin) / 500) + 1) * 500;
  t.same(ticks, [next, next + 500], 'ticks missed while away are skipped: back on the grid');
  t.same(replay(h.events), []);
});

t.test('refused connections back off 0.5 s, 1 s, 2 s … up to 30 s; HELLO resets', async (t) => {
  const clock = new FakeClock();
  const h = harness({}, clock, 9);
  void h.client.start();
  for (let i = 0; i < 9; i++) {
    h.conn().events.onClose('ECONNREFUSED');
    clock.advance(h.delays()[i]!);
  }
  t.equal(h.conns.length, 10, 'one new connection per delay');
  const steps = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
  const off = h.delays().filter((d, i) => d < steps[i]! / 2 || d > steps[i]!);
  t.same(off, [], `delays ${h.delays().join(', ')} within [step/2, step]`);
  h.conn().events.onOpen();
  h.conn().events.onClose('ECONNRESET');
  t.ok(h.delays()[9]! >= 15000, 'an open connection without a HELLO answer does not reset');
  clock.advance(h.delays()[9]!);
  h.hello(5);
  h.conn().events.onLine('BYE SHUTTING_DOWN server is stopping');
  t.ok(h.delays()[10]! <= 500, `after a good HELLO the backoff restarts: ${h.delays()[10]} ms`);
});

for (const code of ['TAKEN_OVER', 'LINE_TOO_LONG']) {
  t.test(`BYE ${code}: no reconnect, exit non-zero with the reason`, async (t) => {
    const clock = new FakeClock();
    const h = harness({}, clock);
    const done = h.client.start();
    h.hello(7);
    clock.advance(1000);
    h.conn().events.onLine(`BYE ${code} reason text`);
    const result = await done;
    t.same(result, { code: 1, reason: `server said BYE ${code} reason text`, value: 9 });
    t.ok(h.conn().closed);
    clock.advance(600_000);
    t.equal(h.conns.length, 1, 'never reconnects');
    t.equal(clock.pending, 0, 'no timer left');
    t.same(h.delays(), []);
  });
}

for (const code of ['SHUTTING_DOWN', 'IDLE_TIMEOUT', 'SERVER_BUSY']) {
  t.test(`BYE ${code}: reconnects and says HELLO again`, async (t) => {
    const clock = new FakeClock();
    const h = harness({}, clock);
    void h.client.start();
    h.hello(7);
    h.conn().events.onLine(`BYE ${code} reason text`);
    t.equal(h.delays().length, 1);
    clock.advance(h.delays()[0]!);
    h.conn().events.onOpen();
    t.same(h.conn().lines(), ['HELLO alice']);
  });
}

t.test('an ERR reply is shown and the client carries on', async (t) => {
  const clock = new FakeClock();
  const h = harness({}, clock);
  void h.client.start();
  h.hello(1);
  clock.advance(500);
  h.conn().events.onLine('ERR STORAGE could not write the state file');
  clock.advance(500);
  t.same(h.conn().lines('VALUE'), ['VALUE 2', 'VALUE 3']);
  t.ok(h.events.some((e) => e.type === 'received' && e.error));
  t.equal(h.conns.length, 1);
});

t.test('an ERR answer to HELLO drops the connection and retries', async (t) => {
  const h = harness();
  void h.client.start();
  h.conn().events.onOpen();
  h.conn().events.onLine('ERR STORAGE could not write the state file');
  t.ok(h.conn().closed);
  t.equal(h.delays().length, 1);
});

t.test('an unparsable reply is a protocol error: drop and reconnect', async (t) => {
  const h = harness();
  void h.client.start();
  h.hello(1);
  h.conn().events.onLine('VALUE 07');
  t.ok(h.conn().closed);
  t.ok(h.events.some((e) => e.type === 'protocol-error'));
  t.equal(h.delays().length, 1);
});

t.test('events from a dropped connection are ignored', async (t) => {
  const clock = new FakeClock();
  const h = harness({}, clock);
  void h.client.start();
  h.hello(1);
  const old = h.conn();
  old.events.onClose('ECONNRESET');
  old.events.onLine('EVEN 50');
  old.events.onClose('again');
  t.equal(h.delays().length, 1, 'one reconnect only');
  t.notOk(h.events.some((e) => e.type === 'increment'));
});

t.test('stop: QUIT, exit 0 on BYE with the last value', async (t) => {
  const clock = new FakeClock();
  const h = harness({}, clock);
  const done = h.client.start();
  h.hello(20);
  clock.advance(1000);
  h.client.stop('SIGINT');
  h.client.stop('SIGINT again');
  t.same(h.conn().lines().slice(-1), ['QUIT']);
  clock.advance(900);
  t.equal(h.conn().lines('VALUE').length, 2, 'no tick after QUIT');
  h.conn().events.onLine('OK 22');
  h.conn().events.onLine('BYE');
  t.same(await done, { code: 0, reason: 'server said BYE', value: 22 });
});

t.test('stop: exit 0 after 1 s without BYE', async (t) => {
  const clock = new FakeClock();
  const h = harness({}, clock);
  const done = h.client.start();
  h.hello(20);
  h.client.stop('SIGTERM');
  clock.advance(999);
  t.equal(h.events.at(-1)?.type, 'sent');
  clock.advance(1);
  t.same(await done, { code: 0, reason: 'SIGTERM; no BYE within 1000 ms', value: 20 });
  t.ok(h.conn().closed);
});

t.test('stop: the connection closing instead of BYE also ends it', async (t) => {
  const h = harness();
  const done = h.client.start();
  h.hello(3);
  h.client.stop();
  h.conn().events.onClose('ECONNRESET');
  t.same(await done, { code: 0, reason: 'connection closed (ECONNRESET)', value: 3 });
});

t.test('stop while waiting to reconnect exits at once', async (t) => {
  const clock = new FakeClock();
  const h = harness({}, clock);
  const done = h.client.start();
  h.conn().events.onClose('ECONNREFUSED');
  h.client.stop('SIGINT');
  t.same(await done, { code: 0, reason: 'SIGINT', value: null });
  t.equal(clock.pending, 0);
  t.equal(h.client.start(), done, 'start after the end changes nothing');
});
