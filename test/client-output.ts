import { stripVTControlCharacters } from 'node:util';
import { Writable } from 'node:stream';
import t from 'tap';
import type { ClientEvent } from '../src/client/types.js';
import { createLogger, logEvent } from '../src/client/output.js';

/** A stream that keeps what is written, as text. */
function sink() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

const where = { host: '127.0.0.1', port: 7070 };
const EVENTS: ClientEvent[] = [
  { type: 'connecting', attempt: 0 },
  { type: 'connected' },
  { type: 'sent', line: 'HELLO alice' },
  { type: 'received', line: 'VALUE 41', error: false },
  { type: 'increment', from: 1, to: 42 },
  { type: 'received', line: 'ERR STORAGE disk full', error: true },
  { type: 'protocol-error', reason: 'unparsable reply "VALUE 07"' },
  { type: 'disconnected', reason: 'ECONNRESET' },
  { type: 'reconnecting', delayMs: 734, attempt: 1 },
  { type: 'stopping', reason: 'SIGINT' },
  { type: 'stopped', code: 0, reason: 'server said BYE', value: 42 },
  { type: 'stopped', code: 1, reason: 'server said BYE TAKEN_OVER x', value: null },
];

const MESSAGES = [
  'connecting to 127.0.0.1:7070',
  'connected',
  '> HELLO alice',
  '< VALUE 41',
  'increment 1 -> 42',
  '< ERR STORAGE disk full',
  'unparsable reply "VALUE 07"',
  'disconnected: ECONNRESET',
  'reconnecting in 734 ms',
  'stopping (SIGINT)',
  'closed: server said BYE; last value 42',
  'closed: server said BYE TAKEN_OVER x; last value none',
];

t.test('piped: one JSON line per event, with its fields', async (t) => {
  const out = sink();
  const logger = createLogger({
    id: 'alice',
    quiet: false,
    pretty: false,
    destination: out.stream,
  });
  for (const e of EVENTS) logEvent(logger, where, e);
  const records = out
    .text()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(
    records.map((r) => r['msg']),
    MESSAGES,
  );
  t.ok(records.every((r) => r['name'] === 'alice' && typeof r['time'] === 'number'));
  t.match(records[2], { event: 'sent', line: 'HELLO alice', level: 30 });
  t.match(records[5], { event: 'received', level: 50 }, 'ERR replies are errors');
  t.match(records[10], { event: 'stopped', code: 0, value: 42, level: 30 });
  t.match(records[11], { event: 'stopped', code: 1, level: 50 });
});

t.test('--quiet: errors only', async (t) => {
  const out = sink();
  const logger = createLogger({ id: 'alice', quiet: true, pretty: false, destination: out.stream });
  for (const e of EVENTS) logEvent(logger, where, e);
  const msgs = out
    .text()
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { msg: string }).msg);
  t.same(msgs, [MESSAGES[5], MESSAGES[6], MESSAGES[11]]);
});

t.test('TTY: readable lines, no JSON', async (t) => {
  const out = sink();
  const logger = createLogger({ id: 'alice', quiet: false, pretty: true, destination: out.stream });
  for (const e of EVENTS) logEvent(logger, where, e);
  // Strip colours, if the terminal running the tests has them.
  const lines = stripVTControlCharacters(out.text()).trim().split('\n');
  t.equal(lines.length, EVENTS.length, 'one line per event');
  t.match(lines[2], /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(alice\): > HELLO alice$/);
  t.match(lines[5], /ERROR \(alice\): < ERR STORAGE disk full$/);
  t.notOk(
    lines.some((l) => l.includes('{')),
    'no JSON',
  );
});
