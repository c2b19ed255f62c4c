/**
 * Issue 4, item 9: graceful stop under load. SIGTERM while 1,000 clients pipeline requests: every
 * request the server read is answered, then BYE SHUTTING_DOWN; the state holds every acknowledged
 * value; the process exits 0 in under 5 s. A second signal exits at once.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseReply } from '../src/protocol/replies.js';
import { parseState } from '../src/store/state-file.js';
import { parseLogText, pathArgs, RawClient, startChild, within } from './fixtures/reliability.js';
import { tempDir } from './fixtures/server.js';

const CLIENTS = 1_000;
/** Connects at a time: the listen backlog is 511, and a dropped SYN costs a 1 s retry. */
const CONNECT_PARALLEL = 100;
/** Requests each client keeps in flight. */
const WINDOW = 2;
/** Replies all clients together have had before the signal: the load is real by then. */
const LOAD_BEFORE_SIGNAL = 10_000;
const EXIT_LIMIT_MS = 5_000;

t.setTimeout(60_000);

type Session = {
  id: string;
  client: RawClient;
  /** The requests sent, in order; reply i answers request i. */
  requests: string[];
  lastOk: number | null;
  wrong: string[];
};

t.test(`SIGTERM with ${CLIENTS} active clients`, async (t) => {
  const dir = tempDir(t);
  const statePath = join(dir, 'state.json');
  const logPath = join(dir, 'messages.log');
  const server = await startChild(t, pathArgs(statePath, logPath));
  let replies = 0;
  let loaded!: () => void;
  const underLoad = new Promise<void>((resolve) => (loaded = resolve));

  const start = async (i: number): Promise<Session> => {
    const client = await RawClient.connect(server.port, t);
    const s: Session = { id: `sd-${i}`, client, requests: [], lastOk: null, wrong: [] };
    let n = i;
    const pump = () => {
      let batch = '';
      while (s.requests.length - client.lines.length < WINDOW) {
        const request = ++n % 3 === 0 ? 'PING' : `VALUE ${n % 100}`;
        s.requests.push(request);
        batch += `${request}\n`;
      }
      // After the server's BYE, or once it closed, nothing more is sent.
      if (!client.isClosed && !client.lines.at(-1)?.startsWith('BYE')) client.send(batch);
    };
    client.onLine = (line) => {
      if (++replies === LOAD_BEFORE_SIGNAL) loaded();
      const request = s.requests[client.lines.length - 1]!;
      const expected =
        request === 'PING'
          ? 'PONG'
          : request.startsWith('VALUE ')
            ? `OK ${request.slice(6)}`
            : null;
      if (line.startsWith('BYE')) return;
      if (expected !== null && line !== expected) s.wrong.push(`${request} -> ${line}`);
      if (line.startsWith('OK ')) s.lastOk = Number(line.slice(3));
      pump();
    };
    s.requests.push(`HELLO ${s.id}`);
    client.send(`HELLO ${s.id}\n`);
    await client.untilLines(1);
    if (client.lines[0] !== 'VALUE 0') s.wrong.push(`HELLO -> ${client.lines[0]}`);
    pump();
    return s;
  };
  const sessions: Session[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONNECT_PARALLEL }, async () => {
      while (next < CLIENTS) sessions.push(await start(next++));
    }),
  );
  await underLoad;

  const signalled = performance.now();
  const exit = await within(20_000, 'the server to exit', server.kill('SIGTERM'));
  const exitMs = exit.at - signalled;
  await within(
    5_000,
    'every client to be closed',
    Promise.all(sessions.map((s) => s.client.closed)),
  );

  t.equal(exit.code, 0, 'exit status 0');
  t.ok(exitMs < EXIT_LIMIT_MS, `exited ${exitMs.toFixed(0)} ms after SIGTERM`);
  const problems: string[] = [];
  for (const s of sessions) {
    const { lines, tail } = s.client;
    const bye = parseReply(lines.at(-1) ?? '');
    if (bye?.kind !== 'BYE' || bye.code !== 'SHUTTING_DOWN') {
      problems.push(`${s.id}: last line ${JSON.stringify(lines.at(-1))}, not BYE SHUTTING_DOWN`);
    }
    if (tail !== '') problems.push(`${s.id}: a reply cut short: ${JSON.stringify(tail)}`);
    if (s.wrong.length > 0) problems.push(`${s.id}: wrong replies ${s.wrong.slice(0, 3)}`);
    if (lines.length - 1 > s.requests.length) problems.push(`${s.id}: more replies than requests`);
  }
  t.same(problems.slice(0, 10), [], 'each client: its replies in order, then BYE SHUTTING_DOWN');

  // The state holds every acknowledged value: the last OK of each client, exactly (every VALUE
  // the server read was answered, so nothing later can be stored).
  const state = parseState(readFileSync(statePath, 'utf8'));
  const lost = sessions.filter((s) => s.lastOk !== null && state.get(s.id) !== s.lastOk);
  t.equal(lost.length, 0, 'the state file holds each last acknowledged value');

  // Every request the server read is answered: per connection, one reply per request line, plus
  // the BYE. (A blank line gets no reply, but these clients send none.)
  const { records } = parseLogText(readFileSync(logPath, 'utf8'));
  const counts = new Map<number, { in: number; out: number; reason?: unknown }>();
  for (const r of records) {
    const c = counts.get(Number(r.conn)) ?? { in: 0, out: 0 };
    if (r.dir === 'in') c.in++;
    if (r.dir === 'out') c.out++;
    if (r.event === 'close') c.reason = r.reason;
    counts.set(Number(r.conn), c);
  }
  const unanswered = [...counts].filter(([, c]) => c.out !== c.in + 1);
  t.equal(counts.size, CLIENTS, 'one connection per client in the log');
  t.same(unanswered.slice(0, 5), [], 'the log: every request read was answered, then BYE');
  t.ok(
    [...counts.values()].every((c) => c.reason === 'SHUTTING_DOWN'),
    'each connection closed for SHUTTING_DOWN',
  );
  const answered = sessions.reduce((n, s) => n + s.client.lines.length, 0);
  t.comment(
    `FIGURES shutdown: clients=${CLIENTS} replies=${answered} exitMs=${exitMs.toFixed(0)} ` +
      `lost=${lost.length}`,
  );
});

t.test('a second signal exits at once', async (t) => {
  const dir = tempDir(t);
  const server = await startChild(t, [
    ...pathArgs(join(dir, 'state.json'), join(dir, 'messages.log')),
    '--shutdown-timeout-ms',
    '20000',
  ]);
  // A peer that never reads nor closes: the graceful stop waits for it (the linger, at least).
  const stuck = await RawClient.connect(server.port, t);
  stuck.socket.pause();
  stuck.send('PING\n');
  const signalled = performance.now();
  server.child.kill('SIGTERM');
  await server.waitForOutput('shutting down');
  server.child.kill('SIGINT');
  const exit = await within(10_000, 'the server to exit', server.exited);
  const exitMs = exit.at - signalled;
  t.equal(exit.code, 130, 'exits with 130 on the second signal');
  t.ok(
    server.output.some((r) => String(r.msg).startsWith('second signal')),
    'it says so: the first stop was still waiting',
  );
  t.ok(exitMs < 1_000, `${exitMs.toFixed(0)} ms after the first signal, without waiting for peers`);
});
