import t from 'tap';
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TimerHandle } from '../src/clock.js';
import { redactRequestLine } from '../src/protocol/redact.js';
import { formatReply, parseReply } from '../src/protocol/replies.js';
import { parseRequest } from '../src/protocol/requests.js';
import { AUTH_DEFAULTS, FailureThrottle } from '../src/server/auth.js';
import { hashPassword, setUser } from '../src/server/users-file.js';
import { FakeClock } from './fixtures/fake-clock.js';
import { LineClient, readLog, startTestServer, tempDir, type TestLike } from './fixtures/server.js';

const FAST = { N: 1024, r: 8, p: 1 };

t.test('redaction keeps the verb and the id of an AUTH line, never the password', async (t) => {
  const cases: Array<[string, string]> = [
    ['AUTH alice s3cret', 'AUTH alice'],
    ['auth\talice   s3cret extra', 'auth alice'],
    ['  Auth alice s3cret  ', 'Auth alice'],
    ['AUTH', 'AUTH'],
    ['AUTH alice', 'AUTH alice'],
    ['HELLO alice', 'HELLO alice'],
    ['AUTHX alice s3cret', 'AUTHX alice s3cret'],
    ['', ''],
  ];
  for (const [line, want] of cases) t.equal(redactRequestLine(line), want, JSON.stringify(line));
});

t.test('redaction skips tokenizing only lines that cannot be AUTH', async (t) => {
  // The rule as written before the first-character shortcut, for every mix of blanks and letters.
  const reference = (line: string): string => {
    const [verb, id] = line.split(/[ \t]+/).filter((w) => w !== '');
    if (verb === undefined || !/^auth$/i.test(verb)) return line;
    return id === undefined ? verb : `${verb} ${id}`;
  };
  const blank = fc.constantFrom('', ' ', '\t', ' \t ');
  const word = fc.constantFrom('AUTH', 'auth', 'aUtH', 'AUTHX', 'a', 'HELLO', 'x\r', 'pw');
  fc.assert(
    fc.property(fc.array(fc.tuple(blank, word), { maxLength: 4 }), blank, (words, end) => {
      const line = words.map(([b, w]) => b + w).join('') + end;
      t.equal(redactRequestLine(line), reference(line), JSON.stringify(line));
    }),
  );
});

t.test('AUTH parses with an id and one printable token as password', async (t) => {
  t.same(parseRequest('auth alice pa$$:w0rd'), {
    type: 'request',
    request: { verb: 'AUTH', id: 'alice', password: 'pa$$:w0rd' },
  });
  for (const bad of [
    'AUTH',
    'AUTH alice',
    'AUTH a/b pw',
    'AUTH alice two words',
    'AUTH alice caf\u00e9',
  ]) {
    t.match(parseRequest(bad), { type: 'error', code: 'BAD_ARGS' }, bad);
  }
  t.match(parseRequest(`AUTH a ${'x'.repeat(257)}`), { code: 'BAD_ARGS' }, 'at most 256');
  t.match(parseRequest(`AUTH a ${'x'.repeat(256)}`), { type: 'request' });
});

t.test('AUTHED has its own reply form', async (t) => {
  t.same(parseReply('AUTHED alice'), { kind: 'AUTHED', id: 'alice' });
  t.equal(formatReply({ kind: 'AUTHED', id: 'alice' }), 'AUTHED alice');
  for (const bad of ['AUTHED', 'AUTHED ', 'AUTHED a/b', 'AUTHED a b'])
    t.equal(parseReply(bad), null);
  for (const line of [
    'ERR AUTH_REQUIRED x',
    'ERR AUTH_FAILED x',
    'ERR FORBIDDEN x',
    'ERR AUTH_DISABLED x',
    'BYE AUTH_FAILED x',
  ]) {
    t.not(parseReply(line), null, line);
  }
});

t.test('the slow-down doubles per recent failure from an address, up to a cap', async (t) => {
  const clock = new FakeClock();
  const throttle = new FailureThrottle(() => clock.now());
  const delays = Array.from({ length: 8 }, () => throttle.fail('10.0.0.1'));
  t.same(delays, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
  t.equal(throttle.fail('10.0.0.2'), 250, 'per address');
  clock.advance(AUTH_DEFAULTS.failureWindowMs - 1);
  t.equal(throttle.fail('10.0.0.2'), 500, 'still recent');
  clock.advance(AUTH_DEFAULTS.failureWindowMs);
  t.equal(throttle.fail('10.0.0.1'), 250, 'forgotten after the window');
});

t.test('the per-address table is bounded: the least recently failed address goes', async (t) => {
  const clock = new FakeClock();
  const throttle = new FailureThrottle(() => clock.now(), { ...AUTH_DEFAULTS, maxAddresses: 3 });
  throttle.fail('a');
  throttle.fail('b');
  throttle.fail('c');
  throttle.fail('a'); // a is now the most recent
  throttle.fail('d'); // b goes
  t.equal(throttle.size, 3);
  t.equal(throttle.fail('a'), 1000, 'a was kept');
  t.equal(throttle.fail('b'), 250, 'b was forgotten');
  for (let i = 0; i < 10_000; i++) throttle.fail(`x${i}`);
  t.equal(throttle.size, 3);
});

/** A users file with alice (s3cret) and bob (hunter2), cheap parameters. */
async function usersFile(t: TestLike): Promise<string> {
  const path = join(tempDir(t), 'users');
  await setUser(path, 'alice', await hashPassword('s3cret', FAST));
  await setUser(path, 'bob', await hashPassword('hunter2', FAST));
  return path;
}

async function authServer(t: TestLike, extra: { maxFailures?: number } = {}) {
  const usersPath = await usersFile(t);
  const s = await startTestServer(t, { security: { usersPath, auth: { delayMs: 1, ...extra } } });
  return { ...s, usersPath };
}

const valid = (t: { fail(m: string): unknown }, lines: string[]) => {
  for (const l of lines) if (parseReply(l) === null) t.fail(`not in the reply grammar: ${l}`);
  return lines;
};

t.test('with --users: AUTH before HELLO, only for that id; other verbs need none', async (t) => {
  const { port } = await authServer(t);
  const c = await LineClient.connect(t, port);
  t.match(valid(t, await c.request('HELLO alice', 'VALUE 5')), [
    /^ERR AUTH_REQUIRED /,
    /^ERR AUTH_REQUIRED /,
  ]);
  t.match(valid(t, await c.request('PING', 'EVEN', 'ODD', 'HELP')), [
    'PONG',
    /^EVEN /,
    /^ODD /,
    /^HELP /,
  ]);
  t.match(valid(t, await c.request('AUTH alice wrong')), [/^ERR AUTH_FAILED /]);
  t.same(await c.request('AUTH alice s3cret'), ['AUTHED alice']);
  t.match(await c.request('VALUE 5'), [/^ERR NOT_IDENTIFIED /], 'AUTH is not HELLO');
  t.match(valid(t, await c.request('HELLO bob')), [/^ERR FORBIDDEN .*alice/]);
  t.match(await c.request('AUTH bob hunter2'), [/^ERR FORBIDDEN /], 'no switching ids');
  t.same(await c.request('HELLO alice', 'VALUE 5'), ['VALUE 0', 'OK 5']);
  t.same(await c.request('AUTH alice s3cret'), ['AUTHED alice'], 'again, same id');
  t.same(await c.request('QUIT'), ['BYE']);
});

t.test('a pipelined AUTH, HELLO, VALUE is answered in order', async (t) => {
  const { port } = await authServer(t);
  const c = await LineClient.connect(t, port);
  t.same(await c.request('AUTH bob hunter2', 'HELLO bob', 'VALUE 7', 'PING', 'VALUE 8'), [
    'AUTHED bob',
    'VALUE 0',
    'OK 7',
    'PONG',
    'OK 8',
  ]);
  const d = await LineClient.connect(t, port);
  t.match(await d.request('AUTH bob nope', 'HELLO bob', 'VALUE 9'), [
    /^ERR AUTH_FAILED/,
    /^ERR AUTH_REQUIRED/,
    /^ERR AUTH_REQUIRED/,
  ]);
});

t.test('an unknown id fails exactly like a wrong password', async (t) => {
  const { port } = await authServer(t);
  const c = await LineClient.connect(t, port);
  const [unknown, wrong] = [await c.request('AUTH mallory x'), await c.request('AUTH alice x')];
  t.same(unknown, wrong);
});

t.test('the third failure ends the connection: ERR, then BYE AUTH_FAILED', async (t) => {
  const { port } = await authServer(t);
  const c = await LineClient.connect(t, port);
  t.match(await c.request('AUTH alice a'), [/^ERR AUTH_FAILED/]);
  t.match(await c.request('AUTH alice b'), [/^ERR AUTH_FAILED/]);
  c.send('AUTH alice c\n');
  t.match(valid(t, await c.readToEnd()), [/^ERR AUTH_FAILED/, /^BYE AUTH_FAILED /]);
});

t.test('pipelined guesses: only three are checked, even if a later one is right', async (t) => {
  const { port } = await authServer(t);
  const c = await LineClient.connect(t, port);
  c.send('AUTH alice a\nAUTH alice b\nAUTH alice c\nAUTH alice s3cret\nHELLO alice\nPING\n');
  const lines = await c.readToEnd();
  t.match(lines, [
    /^ERR AUTH_FAILED/,
    /^ERR AUTH_FAILED/,
    /^ERR AUTH_FAILED/,
    /^ERR AUTH_FAILED/,
    /^ERR AUTH_REQUIRED/,
    'PONG',
    /^BYE AUTH_FAILED/,
  ]);
  t.equal(lines.length, 7, 'BYE is the last line');
});

t.test('an authenticated id cannot be taken over without its password', async (t) => {
  const { port } = await authServer(t);
  const alice = await LineClient.connect(t, port);
  t.same(await alice.request('AUTH alice s3cret', 'HELLO alice', 'VALUE 42'), [
    'AUTHED alice',
    'VALUE 0',
    'OK 42',
  ]);
  const mallory = await LineClient.connect(t, port);
  t.match(await mallory.request('HELLO alice', 'AUTH bob hunter2', 'HELLO alice'), [
    /^ERR AUTH_REQUIRED/,
    'AUTHED bob',
    /^ERR FORBIDDEN/,
  ]);
  t.same(await alice.request('VALUE 43'), ['OK 43'], 'the real alice is still connected');
});

t.test('without --users nothing changes, and AUTH says so', async (t) => {
  const { port, server } = await startTestServer(t);
  t.same(await server.reload(), [], 'nothing to reload: SIGHUP logs no reload');
  const c = await LineClient.connect(t, port);
  t.match(await c.request('AUTH alice s3cret'), [/^ERR AUTH_DISABLED /]);
  t.same(await c.request('HELLO alice', 'VALUE 3'), ['VALUE 0', 'OK 3']);
});

t.test('the message log has AUTH alice and never the password', async (t) => {
  const { port, server, logPath } = await authServer(t);
  const c = await LineClient.connect(t, port);
  await c.request('AUTH alice wrong-Pw1', 'auth  alice   s3cret', 'HELLO alice', 'QUIT');
  await c.readToEnd();
  await server.close();
  const log = await readLog(logPath);
  const inLines = log.filter((r) => r.dir === 'in').map((r) => r.line);
  t.same(inLines, ['AUTH alice', 'auth alice', 'HELLO alice', 'QUIT']);
  const text = JSON.stringify(log);
  t.notMatch(text, /s3cret/);
  t.notMatch(text, /wrong-Pw1/);
});

t.test('reload picks up a changed users file and keeps the old one if it is broken', async (t) => {
  const { port, server, usersPath } = await authServer(t);
  await setUser(usersPath, 'carol', await hashPassword('c4rol', FAST));
  t.same(await server.reload(), ['users file'], 'says what it reloaded (the SIGHUP log line)');
  const c = await LineClient.connect(t, port);
  t.same(await c.request('AUTH carol c4rol'), ['AUTHED carol']);
  writeFileSync(usersPath, 'garbage\n');
  await t.rejects(server.reload(), /users: .*line 1/);
  const d = await LineClient.connect(t, port);
  t.same(await d.request('AUTH carol c4rol'), ['AUTHED carol'], 'the old users stay');
});

/** A fake clock that says when a timer is set, so a test can wait for the slow-down to start. */
class WatchedClock extends FakeClock {
  readonly delays: number[] = [];
  #wake: (() => void) | null = null;

  override setTimeout(fn: () => void, ms: number): TimerHandle {
    this.delays.push(ms);
    this.#wake?.();
    return super.setTimeout(fn, ms);
  }

  async timers(n: number): Promise<void> {
    while (this.delays.length < n) await new Promise<void>((r) => (this.#wake = r));
  }
}

t.test('a failed AUTH is answered only after the slow-down, per address', async (t) => {
  const clock = new WatchedClock();
  const usersPath = await usersFile(t);
  const { port } = await startTestServer(t, { security: { usersPath, clock } });
  const c = await LineClient.connect(t, port);
  let answered = false;
  const reply = c.request('AUTH alice wrong').then((l) => ((answered = true), l));
  await clock.timers(1);
  t.same(clock.delays, [250]);
  clock.advance(249);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  t.notOk(answered, 'no reply before the delay');
  clock.advance(1);
  t.match(await reply, [/^ERR AUTH_FAILED/]);
  // Another connection from the same address starts where this one left off.
  const d = await LineClient.connect(t, port);
  const second = d.request('AUTH bob wrong');
  await clock.timers(2);
  t.same(clock.delays, [250, 500]);
  clock.advance(500);
  t.match(await second, [/^ERR AUTH_FAILED/]);
  // A good password is never delayed.
  t.same(await d.request('AUTH bob hunter2'), ['AUTHED bob']);
  t.equal(clock.delays.length, 2);
});

t.test(
  'a HELLO or VALUE held behind an AUTH claims nothing once taken over or closed',
  async (t) => {
    const clock = new WatchedClock();
    const usersPath = await usersFile(t);
    const { port } = await startTestServer(t, { security: { usersPath, clock } });
    const old = await LineClient.connect(t, port);
    t.same(await old.request('AUTH alice s3cret', 'HELLO alice', 'VALUE 1'), [
      'AUTHED alice',
      'VALUE 0',
      'OK 1',
    ]);
    // A wrong password: its reply, and the HELLO and VALUE behind it, wait out the slow-down.
    old.send('AUTH alice wrong\nHELLO alice\nVALUE 99\n');
    await clock.timers(1);
    const next = await LineClient.connect(t, port);
    t.same(await next.request('AUTH alice s3cret', 'HELLO alice', 'VALUE 3'), [
      'AUTHED alice',
      'VALUE 1',
      'OK 3',
    ]);
    clock.advance(250);
    t.match(await old.readToEnd(), [
      /^ERR AUTH_FAILED/,
      /^ERR TAKEN_OVER alice was claimed by another connection; the value was not stored/,
      /^ERR TAKEN_OVER alice was claimed by another connection; 99 was not stored/,
      /^BYE TAKEN_OVER/,
    ]);
    t.same(await next.request('VALUE 4'), ['OK 4'], 'the newer connection still holds alice');

    // A closed connection's held HELLO and VALUE: they run after the slow-down, to no one.
    const gone = await LineClient.connect(t, port);
    gone.send('AUTH alice wrong\nHELLO alice\nVALUE 77\n');
    await clock.timers(2);
    gone.socket.destroy();
    await new Promise((r) => setTimeout(r, 50)); // the server sees the close before the slow-down ends
    clock.advance(500);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    t.same(await next.request('VALUE 5'), ['OK 5'], 'not taken over by a closed connection');
    const check = await LineClient.connect(t, port);
    t.same(await check.request('AUTH bob hunter2', 'HELLO bob', 'PING'), [
      'AUTHED bob',
      'VALUE 0',
      'PONG',
    ]);
    t.same(await next.request('QUIT'), ['BYE']);
    const last = await LineClient.connect(t, port);
    t.same(await last.request('AUTH alice s3cret', 'HELLO alice'), ['AUTHED alice', 'VALUE 5']);
  },
);

t.test('a flood of AUTH guesses does not hold back other clients commits', async (t) => {
  // Each guess is for an unknown id, so it costs the full default scrypt (the decoy entry).
  // Unbounded, the guesses filled libuv's 4 threads and every commit's fdatasync queued behind
  // all of them; two checks at a time leave threads free, so the OK comes before most guesses
  // are answered.
  const usersPath = await usersFile(t);
  // No slow-down, so a guess is answered as soon as its check is done.
  const security = { usersPath, auth: { delayMs: 0 } };
  const { port, server } = await startTestServer(t, { security });
  const honest = await LineClient.connect(t, port);
  t.same(await honest.request('AUTH alice s3cret', 'HELLO alice'), ['AUTHED alice', 'VALUE 0']);
  const guessers = await Promise.all(Array.from({ length: 40 }, () => LineClient.connect(t, port)));
  let answered = 0;
  const guesses = guessers.map((g, i) =>
    g.request(`AUTH nobody${i} guess${i}`).then((lines) => (answered++, lines)),
  );
  // Every guess read, so its check is queued, before the VALUE is sent.
  while (server.monitor.counts.requests.AUTH < 41) await new Promise((r) => setImmediate(r));
  t.same(await honest.request('VALUE 5'), ['OK 5']);
  const before = answered;
  t.ok(before < 8, `${before} of 40 guesses were answered before the OK (unbounded: 38)`);
  for (const lines of await Promise.all(guesses)) t.match(lines, [/^ERR AUTH_FAILED/]);
});
