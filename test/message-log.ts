import t from 'tap';
import { pino } from 'pino';
import { LOG_LINE_CAP } from '../src/limits.js';
import { jsonString, MessageLog, type Direction } from '../src/log/message-log.js';
import fc from 'fast-check';

const NOW = 1_795_000_000_123;

/** What pino itself writes for a line record, with the message log's options. */
function pinoRecord(
  dir: Direction,
  text: string,
  conn: number,
  id?: string,
  node?: string,
): string {
  const out: string[] = [];
  const root = pino(
    {
      base: node === undefined ? null : { node },
      messageKey: 'line',
      timestamp: () => `,"time":${NOW}`,
    },
    { write: (s: string) => out.push(s) },
  );
  const child = root.child(id === undefined ? { conn } : { conn, id });
  if (text.length <= LOG_LINE_CAP) child.info({ dir }, text);
  else child.info({ dir, truncated: text.length }, text.slice(0, LOG_LINE_CAP));
  return out.join('');
}

function record(dir: Direction, text: string, conn: number, id?: string, node?: string): string {
  const out: string[] = [];
  new MessageLog({ write: (s) => void out.push(s) }, () => NOW, node)
    .forConnection(conn, id)
    .line(dir, text);
  return out.join('');
}

t.test('a line record is byte for byte what pino writes', async (t) => {
  const lines = [
    'VALUE 42',
    'OK 42',
    '',
    'hello "world" \\ back',
    'tab\there\r and \u0000 nul \u001b[2J',
    'caf\u00e9 \u{1f600} \u4e2d\u6587',
    '\ufffd\ufffd',
    'x'.repeat(LOG_LINE_CAP),
    'y'.repeat(LOG_LINE_CAP + 1),
    '\u00e9'.repeat(LOG_LINE_CAP + 7),
  ];
  for (const text of lines) {
    for (const [conn, id, node] of [
      [1, undefined, undefined],
      [70_000, 'alice', undefined],
      [3, 'a.b-c_9', undefined],
      [4, 'bob', '127.0.0.1:7070'],
      [5, undefined, 'n"1\u2028'],
    ] as const) {
      for (const dir of ['in', 'out'] as const) {
        t.equal(
          record(dir, text, conn, id, node),
          pinoRecord(dir, text, conn, id, node),
          `${dir} ${JSON.stringify(text.slice(0, 24))} (${text.length} chars) conn ${conn} id ${id} node ${node}`,
        );
      }
    }
  }
});

t.test(
  'jsonString is JSON.stringify plus the escapes of the characters JSON leaves raw',
  async (t) => {
    const unsafe = /[\u007f-\u009f\u2028\u2029]/g;
    const reference = (text: string) =>
      JSON.stringify(text).replace(
        unsafe,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );
    // Each side of every boundary the scan tests, and characters past them.
    const edges = [
      '\u001f',
      ' ',
      '!',
      '"',
      '#',
      '[',
      '\\',
      ']',
      '~',
      '\u007f',
      '\u0080',
      '\u009f',
      '\u00a0',
    ];
    const chars = fc.constantFrom(...edges, 'a', '7', '\u2028', '\u2029', '\u00e9', '\u{1f600}');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 12 }), (cs) => {
        const text = cs.join('');
        t.equal(jsonString(text), reference(text), reference(text)); // the message itself must be TAP-safe
      }),
      { numRuns: 2000 },
    );
  },
);

t.test('each record has the time it was made at, in either direction', async (t) => {
  const out: string[] = [];
  let now = 1000;
  const log = new MessageLog({ write: (s) => void out.push(s) }, () => now).forConnection(3, 'bob');
  log.line('in', 'VALUE 1');
  log.line('out', 'OK 1');
  now = 1001;
  log.line('out', 'OK 2');
  log.line('in', 'VALUE 3');
  log.line('in', 'x'.repeat(LOG_LINE_CAP + 1));
  const got = out.map((r) => JSON.parse(r) as { time: number; dir: string; conn: number });
  t.same(
    got.map((r) => [r.time, r.dir, r.conn]),
    [
      [1000, 'in', 3],
      [1000, 'out', 3],
      [1001, 'out', 3],
      [1001, 'in', 3],
      [1001, 'in', 3],
    ],
  );
});

t.test('the characters JSON leaves raw are escaped, and read back exactly', async (t) => {
  const text = 'PING \u007f \u0085 \u009b2J \u2028 \u2029 end';
  const rec = record('in', text, 1);
  t.notMatch(rec, /[\u007f-\u009f\u2028\u2029]/, 'no raw DEL, C1 or line separator');
  t.match(rec, '\\u009b2J');
  t.equal(JSON.parse(rec).line, text);
});

t.test('invalid UTF-8 carries its exact bytes; a run of blank lines is one record', async (t) => {
  const out: string[] = [];
  const log = new MessageLog({ write: (s) => void out.push(s) }, () => NOW).forConnection(2, 'al');
  t.equal(log.line('in', '\ufffdA', '/0E='), true, 'a record the sink took');
  log.blank(12_345);
  t.same(out, [
    `{"level":30,"time":${NOW},"conn":2,"id":"al","dir":"in","raw":"/0E=","line":"\ufffdA"}\n`,
    `{"level":30,"time":${NOW},"conn":2,"id":"al","dir":"in","blank":12345}\n`,
  ]);
  const full = new MessageLog({ write: () => false }, () => NOW).forConnection(1);
  t.equal(full.line('in', 'VALUE 1'), false, 'a record the sink dropped');
});

t.test('events carry the connection bindings, in pino order', async (t) => {
  const out: string[] = [];
  const log = new MessageLog({ write: (s) => void out.push(s) }, () => NOW);
  log.forConnection(5).event('open', { remote: '127.0.0.1:1' });
  log.forConnection(5, 'bob').event('close', { remote: '127.0.0.1:1', reason: 'quit \u009b' });
  t.same(out, [
    `{"level":30,"time":${NOW},"conn":5,"event":"open","remote":"127.0.0.1:1"}\n`,
    `{"level":30,"time":${NOW},"conn":5,"id":"bob","event":"close","remote":"127.0.0.1:1","reason":"quit \\u009b"}\n`,
  ]);
});
