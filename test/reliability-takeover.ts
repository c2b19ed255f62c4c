/**
 * Issue 4, item 8: takeover storms. Two clients keep claiming the same id, each pipelining VALUEs
 * on every connection. Every acknowledged value survives into the next holder's HELLO answer, and
 * the log shows each takeover as a close record with reason TAKEN_OVER.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseState } from '../src/store/state-file.js';
import { parseLogText, pathArgs, RawClient, startChild, within } from './fixtures/reliability.js';
import { tempDir } from './fixtures/server.js';

const TAKEOVERS = 400;
/** Unanswered VALUEs each connection keeps in flight. */
const WINDOW = 4;
const ID = 'contested';

type Holder = {
  who: 'A' | 'B';
  client: RawClient;
  localPort: number;
  hello: string | null;
  sent: number;
  oks: number[];
};

t.setTimeout(60_000);

t.test(`${TAKEOVERS} takeovers between two clients pipelining VALUE`, async (t) => {
  const dir = tempDir(t);
  const statePath = join(dir, 'state.json');
  const logPath = join(dir, 'messages.log');
  const server = await startChild(t, pathArgs(statePath, logPath));
  const chain: Holder[] = [];
  const problems: string[] = [];
  let takeovers = 0;
  let stopping = false;

  /** One connection: HELLO, then VALUEs (A even, B odd) until it is taken over or stopped. */
  async function hold(who: 'A' | 'B', counter: { n: number }, claimed?: () => void) {
    const client = await RawClient.connect(server.port, t);
    const holder: Holder = {
      who,
      client,
      localPort: client.socket.localPort!,
      hello: null,
      sent: 0,
      oks: [],
    };
    chain.push(holder);
    const outstanding: number[] = [];
    const pump = () => {
      let batch = '';
      while (!stopping && outstanding.length < WINDOW) {
        const value = (2 * counter.n++ + (who === 'A' ? 0 : 1)) % 100;
        outstanding.push(value);
        holder.sent++;
        batch += `VALUE ${value}\n`;
      }
      if (batch !== '' && !client.isClosed) client.send(batch);
    };
    client.onLine = (line) => {
      if (holder.hello === null) {
        holder.hello = line;
        claimed?.();
      } else if (line.startsWith('OK ')) {
        const value = outstanding.shift();
        if (line !== `OK ${value}`) problems.push(`${who}: "${line}" for VALUE ${value}`);
        holder.oks.push(value!);
      }
      pump();
    };
    client.send(`HELLO ${ID}\n`);
    pump();
    return holder;
  }

  /** A logical client: reconnects each time it is taken over, until enough takeovers happened. */
  async function contend(who: 'A' | 'B', first?: () => void) {
    const counter = { n: 0 };
    for (;;) {
      const holder = await hold(who, counter, first);
      first = undefined;
      await holder.client.closed;
      if (holder.client.lines.at(-1)?.startsWith('BYE TAKEN_OVER')) takeovers++;
      else return; // stopped by the test
      if (takeovers >= TAKEOVERS) {
        stopping = true;
        return;
      }
    }
  }

  // A claims first; B starts only then, so the holders strictly alternate A, B, A, B, ...
  let aClaimed!: () => void;
  const claimedA = new Promise<void>((resolve) => (aClaimed = resolve));
  const a = contend('A', aClaimed);
  await claimedA;
  const b = contend('B');
  await within(20_000, 'the takeovers to run', Promise.race([a, b]));
  // The other one still holds the id: it sends nothing more; once all its VALUEs are answered
  // it says QUIT.
  const final = chain.at(-1)!;
  await within(5_000, "the last holder's answers", final.client.untilLines(1 + final.sent));
  t.same(await final.client.request('QUIT'), ['BYE'], 'the last holder quits');
  await within(5_000, 'both clients to finish', Promise.all([a, b]));

  // Each holder's HELLO answer is the previous holder's last acknowledged value.
  for (let i = 1; i < chain.length; i++) {
    const previous = chain[i - 1]!;
    const expected = previous.oks.at(-1) ?? Number(previous.hello?.split(' ')[1]);
    if (chain[i]!.hello !== `VALUE ${expected}`) {
      problems.push(
        `holder ${i} (${chain[i]!.who}) got "${chain[i]!.hello}", but holder ${i - 1} ` +
          `(${previous.who}) had OK ${expected} last`,
      );
    }
    if (previous.who === chain[i]!.who)
      problems.push(`holders ${i - 1} and ${i} are both ${previous.who}`);
  }
  // Each taken-over connection got only its answers, then BYE TAKEN_OVER, then the close.
  for (const [i, h] of chain.slice(0, -1).entries()) {
    const { lines, tail } = h.client;
    const body = lines.slice(1, -1);
    if (!body.every((l) => l.startsWith('OK ')) || body.length !== h.oks.length || tail !== '') {
      problems.push(`holder ${i}: unexpected lines ${JSON.stringify(lines.slice(-3))}`);
    }
  }
  t.same(problems, [], 'the value survives every takeover');
  t.equal(takeovers, TAKEOVERS, `${takeovers} takeovers`);
  t.equal(chain.length, TAKEOVERS + 1, 'one connection per holder');

  // The last holder's last acknowledged value is the stored one.
  const finalValue = final.oks.at(-1) ?? Number(final.hello?.split(' ')[1]);
  const check = await RawClient.connect(server.port, t);
  t.same(await check.request(`HELLO ${ID}`), [`VALUE ${finalValue}`], 'a newcomer reads it back');
  check.socket.destroy();
  t.equal((await server.kill('SIGTERM')).code, 0);
  t.equal(parseState(readFileSync(statePath, 'utf8')).get(ID), finalValue, 'and it is on disk');

  // The log shows each takeover: the taken-over connection's close record says TAKEN_OVER.
  const { records } = parseLogText(readFileSync(logPath, 'utf8'));
  const connOf = new Map<string, number[]>();
  const closeReason = new Map<number, unknown>();
  for (const r of records) {
    if (r.event === 'open') {
      connOf.set(String(r.remote), [...(connOf.get(String(r.remote)) ?? []), Number(r.conn)]);
    }
    if (r.event === 'close') closeReason.set(Number(r.conn), r.reason);
  }
  const unlogged = chain.slice(0, -1).filter((h) => {
    const conns = connOf.get(`127.0.0.1:${h.localPort}`) ?? [];
    return !conns.some((c) => closeReason.get(c) === 'TAKEN_OVER');
  });
  t.same(unlogged.length, 0, 'every taken-over connection has a close record with TAKEN_OVER');
  t.equal(
    records.filter((r) => r.event === 'close' && r.reason === 'TAKEN_OVER' && r.id === ID).length,
    TAKEOVERS,
    'and there is one such record per takeover',
  );
  const acked = chain.reduce((n, h) => n + h.oks.length, 0);
  t.comment(`FIGURES takeover: takeovers=${takeovers} acknowledged=${acked} lost=0`);
});
