/**
 * Issue 4, security basics: the default bind is loopback; nothing a peer sends can inject into the
 * message log; no input makes the server touch a path other than its state file and log.
 */
import t, { type Test } from 'tap';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseReply } from '../src/protocol/replies.js';
import { parseState } from '../src/store/state-file.js';
import {
  assertOnlyOwnFiles,
  parseLogText,
  pathArgs,
  RawClient,
  startChild,
} from './fixtures/reliability.js';
import { tempDir } from './fixtures/server.js';

// Real processes on a shared 2-core machine: more than tap's 30 s default when it is loaded.
t.setTimeout(90_000);

/** Listening TCP sockets on `port` in /proc/net/tcp{,6}: [file, hex local address]. */
function listeners(port: number): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = row.trim().split(/\s+/);
      const [address, hexPort] = (local ?? '').split(':');
      if (state === '0A' && parseInt(hexPort ?? '', 16) === port) found.push([file, address!]);
    }
  }
  return found;
}

t.test('the default bind is loopback', async (t) => {
  const dir = tempDir(t);
  // No --host: the real default.
  const server = await startChild(t, pathArgs(join(dir, 'state.json'), join(dir, 'log')));
  t.equal(server.host, '127.0.0.1', 'the ready line says 127.0.0.1');
  t.same(listeners(server.port), [['/proc/net/tcp', '0100007F']], 'and only 127.0.0.1 listens');
});

/** Lines with bytes a log must not pass through raw; each is sent with LF. */
const HOSTILE: Buffer[] = [
  'PING \x1b[2J\x1b[31mred',
  'HELLO evil\x1b]0;owned\x07',
  'PING\rPING',
  'PI\0NG',
  '\0\0\0',
  '"},{"event":"close","reason":"forged"}',
  '\\"\\\\\\u0000',
  'VALUE 5\r\r',
  '\r',
  '\t\x0b\x0c\x1c\x1d\x1e',
  '\x08\x08\x08',
].map((s) => Buffer.from(s));
HOSTILE.push(Buffer.from([0x50, 0x49, 0xff, 0xfe, 0xc0, 0x80, 0x4e, 0x47])); // invalid UTF-8

/** The bytes the server logs for a line: all of them, but one final CR; a blank line is counted. */
const asLogged = (bytes: Buffer) => {
  const line = bytes.at(-1) === 0x0d ? bytes.subarray(0, -1) : bytes;
  return line.length === 0 ? '(1 blank)' : line.toString('hex');
};

/** A request record's exact bytes: `raw` (base64) when they were not UTF-8, else `line`. */
const loggedBytes = (r: Record<string, unknown>) =>
  typeof r.blank === 'number'
    ? `(${r.blank} blank)`
    : typeof r.raw === 'string'
      ? Buffer.from(r.raw, 'base64').toString('hex')
      : Buffer.from(String(r.line), 'utf8').toString('hex');

async function logOf(t: Test, lines: Buffer[]) {
  const dir = tempDir(t);
  const logPath = join(dir, 'messages.log');
  const server = await startChild(t, pathArgs(join(dir, 'state.json'), logPath));
  const client = await RawClient.connect(server.port, t);
  client.send(Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
  client.send('HELLO after\nQUIT\n');
  await client.closed;
  t.equal((await server.kill('SIGTERM')).code, 0);
  return { client, bytes: readFileSync(logPath) };
}

t.test('peer bytes cannot inject into the message log', async (t) => {
  const { client, bytes } = await logOf(t, HOSTILE);
  t.same(client.malformed, [], 'every reply is well-formed');
  t.ok(
    client.lines.length > 0 && client.lines.every((l) => /^[\x20-\x7e]*$/.test(l)),
    'replies are printable ASCII',
  );
  const { records, bad } = parseLogText(bytes.toString('utf8'));
  t.same(bad, [], 'every log line parses as one JSON record');
  const received = records.filter((r) => r.dir === 'in').map(loggedBytes);
  t.same(
    received,
    [...HOSTILE, Buffer.from('HELLO after'), Buffer.from('QUIT')].map(asLogged),
    'each request line round-trips byte for byte (invalid UTF-8 through `raw`)',
  );
  const invalid = records.find((r) => typeof r.raw === 'string');
  t.equal(invalid?.line, 'PI\ufffd\ufffd\ufffd\ufffdNG', 'and reads as text with U+FFFD');
  t.same(
    records.filter((r) => r.event !== undefined).map((r) => r.event),
    ['open', 'close'],
    'no forged records: one open, one close',
  );
  t.notOk(
    bytes.some((b) => b < 0x20 && b !== 0x0a),
    'no raw C0 control byte (ESC, CR, NUL, BS, ...) in the file',
  );
});

t.test('no raw C1 control, DEL or Unicode line separator in the message log', async (t) => {
  // Terminals act on C1 controls (U+009B is CSI, U+009D is OSC), and str.splitlines() and
  // friends split records at U+0085, U+2028 and U+2029. JSON allows them raw; a log that is
  // read with `cat` or `less -r`, or split by such tools, must not carry them raw.
  const lines = [
    'PING\x7f',
    'PING \u009b2J',
    'PING \u009d0;owned\u009c',
    'a\u0085b',
    'a\u2028b\u2029c',
  ];
  const { bytes } = await logOf(
    t,
    lines.map((l) => Buffer.from(l)),
  );
  const { records, bad } = parseLogText(bytes.toString('utf8'));
  t.same(bad, [], 'every log line parses');
  t.same(
    records.filter((r) => r.dir === 'in').map((r) => r.line),
    [...lines, 'HELLO after', 'QUIT'],
    'each `line` round-trips exactly',
  );
  const raw = [...bytes.toString('utf8')].filter((ch) => /[\x7f-\x9f\u2028\u2029]/.test(ch));
  t.same(
    raw.map((ch) => `U+${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`),
    [],
    'escaped as \\uXXXX, not raw',
  );
});

t.test('no input touches a path other than the state file and the log', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'state'));
  mkdirSync(join(dir, 'logs'));
  const statePath = join(dir, 'state', 'values.json');
  const passwd = statSync('/etc/passwd');
  const server = await startChild(t, pathArgs(statePath, join(dir, 'logs', 'messages.log')));
  const client = await RawClient.connect(server.port, t);
  const paths = [
    '../../etc/passwd',
    '/etc/passwd',
    'a/b',
    '..\\..\\x',
    '~root',
    'state/../../x',
    '%2e%2e%2f',
    '$(touch pwned)',
    '`id`',
    'a;b',
    '*',
  ];
  const replies = await client.request(...paths.map((p) => `HELLO ${p}`));
  t.ok(
    replies.every((r) => {
      const reply = parseReply(r);
      return reply?.kind === 'ERR' && reply.code === 'BAD_ARGS';
    }),
    `each path-like id is BAD_ARGS: ${replies[0]}`,
  );
  // "." and ".." are valid ids (A-Z a-z 0-9 _ . -): data, never a path.
  t.same(await client.request('HELLO ..', 'VALUE 7'), ['VALUE 0', 'OK 7']);
  const dot = await RawClient.connect(server.port, t);
  t.same(await dot.request('HELLO .', 'VALUE 8'), ['VALUE 0', 'OK 8']);
  t.equal((await server.kill('SIGTERM')).code, 0);

  t.same(Object.fromEntries(parseState(readFileSync(statePath, 'utf8'))), { '..': 7, '.': 8 });
  assertOnlyOwnFiles(t, dir);
  t.equal(statSync('/etc/passwd').mtimeMs, passwd.mtimeMs, '/etc/passwd untouched');
});
