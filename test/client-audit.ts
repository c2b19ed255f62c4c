import t from 'tap';
import { auditLog, auditLogs, type LogRecord } from '../src/client/audit.js';

const window = { minMs: 3000, maxMs: 5000, earlyMs: 0, lateMs: 0, graceMs: 100 };

/** A log from a compact script: `> line` is a request, `< line` a reply, `@ms` sets the time. */
function log(conn: number, script: string[]): LogRecord[] {
  let time = 0;
  const records: LogRecord[] = [{ time, conn, event: 'open' }];
  for (const step of script) {
    if (step.startsWith('@')) time = Number(step.slice(1));
    else records.push({ time, conn, dir: step[0] === '>' ? 'in' : 'out', line: step.slice(2) });
  }
  return records;
}

const good = [
  '> HELLO alice',
  '< VALUE 97',
  '@500',
  '> VALUE 98',
  '< OK 98',
  '@1000',
  '> VALUE 99',
];

t.test('a run that follows the rules has no problems', async (t) => {
  const script = [...good, '@3500', '> ODD', '< ODD 33', '> VALUE 0', '@4000', '> VALUE 33'];
  const more = ['@7000', '> EVEN', '< EVEN 0', '@7500', '> VALUE 33'];
  const [a] = auditLog(log(1, [...script, ...more]), window);
  t.same(a?.problems, []);
  t.equal(a?.id, 'alice');
  t.equal(a?.last, 33);
  t.equal(a?.values, 5);
  t.equal(a?.switches, 2);
});

t.test('a reply in flight: the old or the new increment, but never back', async (t) => {
  const flight = [...good, '@3000', '> EVEN', '< EVEN 10', '> VALUE 0'];
  t.same(auditLog(log(1, [...flight, '> VALUE 10']), window)[0]?.problems, [], 'new after old');
  const back = auditLog(log(1, [...flight.slice(0, -1), '> VALUE 9', '> VALUE 10']), window);
  t.same(back[0]?.problems, ['VALUE 10 after 9: not 9 + (10) mod 100']);
  const ignored = auditLog(log(1, [...flight, '@3100', '> VALUE 1', '@3101', '> VALUE 2']), window);
  t.same(
    ignored[0]?.problems,
    ['VALUE 2 after 1: not 1 + (10) mod 100'],
    'after graceMs the reply has arrived: the old increment is no longer accepted',
  );
});

t.test('a wrong value, a value before HELLO, a switch outside the window', async (t) => {
  t.match(auditLog(log(1, [...good, '> VALUE 5']), window)[0]?.problems, [/VALUE 5 after 99/]);
  const early = auditLog(log(1, ['> HELLO bob', '> VALUE 1', '< VALUE 0']), window);
  t.same(early[0]?.problems, ['VALUE 1 before the HELLO reply']);
  const fast = auditLog(log(1, [...good, '@2999', '> EVEN']), window);
  t.match(fast[0]?.problems, [/EVEN 2999 ms after/]);
  const slow = auditLog(log(1, [...good, '@5001', '> ODD']), window);
  t.match(slow[0]?.problems, [/ODD 5001 ms after/]);
  const slack = auditLog(log(1, [...good, '@5001', '> ODD']), { ...window, lateMs: 1 });
  t.same(slack[0]?.problems, []);
});

t.test('connections are audited apart; an open record starts afresh', async (t) => {
  const records = [
    ...log(1, good),
    ...log(2, ['> HELLO bob', '< VALUE 5', '> VALUE 6']),
    ...log(1, ['> HELLO alice', '< VALUE 99', '> VALUE 0']), // conn 1 again: a restarted server
    { time: 0, conn: 3, event: 'open' }, // never said HELLO: not a client run
    { msg: 'not a connection record' },
  ];
  const audits = auditLog(records, window);
  t.same(
    audits.map((a) => [a.conn, a.id, a.last, a.problems.length]),
    [
      [1, 'alice', 99, 0],
      [2, 'bob', 6, 0],
      [1, 'alice', 0, 0],
    ],
  );
  t.same(audits[0]?.tickGaps, [500]);
});

t.test('several servers: a client that moved on continues from its last OK', async (t) => {
  const on = (node: string, conn: number, start: number, script: string[]) =>
    log(conn, [`@${start}`, ...script]).map((r) => ({ ...r, node, time: Number(r.time) + start }));
  const first = ['> HELLO bob', '< VALUE 3', '@500', '> VALUE 4', '< OK 4'];
  const closed = (conn: number, at: number) => ({ time: at, conn, event: 'close', node: 's1' });
  const moved = (hello: number, extra: string[] = [], end: LogRecord[] = [closed(1, 1000)]) => [
    [...on('s1', 1, 0, [...first, ...extra]), ...end],
    on('s2', 7, 2000, ['> HELLO bob', `< VALUE ${hello}`, '@500', `> VALUE ${(hello + 1) % 100}`]),
  ];
  const kept = auditLogs(moved(4), window);
  t.same(
    kept.flatMap((a) => a.problems),
    [],
    'the next server gave the last OK',
  );
  t.same(
    kept.map((a) => a.node),
    ['s1', 's2'],
    'each connection names its server',
  );
  t.same(
    auditLogs(moved(5, ['@900', '> VALUE 5']), window).flatMap((a) => a.problems),
    [],
    'or a value sent after it and never answered',
  );
  const lost = auditLogs(moved(3), window).flatMap((a) => a.problems);
  t.match(lost, [/HELLO got 3 after s1 had 4 acknowledged: a value was lost/]);
  t.same(
    auditLogs(moved(6, [], []), window).flatMap((a) => a.problems),
    [],
    'a server killed mid-way (no close record) cannot be held to its log',
  );
});

t.test(
  'several servers: HELLOs in one millisecond go in the order their values agree with',
  async (t) => {
    // A record's time is epoch ms: two servers' HELLO replies in one millisecond cannot be ordered
    // by the logs. Here s2 held bob first (3, then OK 4) and s1 took over in that millisecond.
    const session = (node: string, conn: number, script: string[]) => [
      ...log(conn, script).map((r) => ({ ...r, node, time: 1000 })),
      { time: 1000, conn, event: 'close', node },
    ];
    const s2 = session('s2', 7, ['> HELLO bob', '< VALUE 3', '> VALUE 4', '< OK 4']);
    const took = (hello: number) =>
      session('s1', 1, ['> HELLO bob', `< VALUE ${hello}`, `> VALUE ${hello + 1}`]);
    t.same(
      auditLogs([took(4), s2], window).flatMap((a) => a.problems),
      [],
      'listed s1 first',
    );
    t.same(
      auditLogs([s2, took(4)], window).flatMap((a) => a.problems),
      [],
      'listed s2 first',
    );
    t.match(
      auditLogs([took(7), s2], window).flatMap((a) => a.problems),
      [/HELLO got \d after s\d had \d acknowledged: a value was lost/],
      'a value neither order explains is still lost',
    );
  },
);
