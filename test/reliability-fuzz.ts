/**
 * Issue 4, item 5: fuzz. 100,000 random byte chunks over many connections to the real bin/server:
 * random lengths and split points, NUL, invalid UTF-8, overlong lines, CR without LF. The process
 * never crashes, every reply is a line of the protocol.md grammar (strict parseReply), RSS stays
 * bounded, and a well-behaved client alongside keeps getting correct answers.
 */
import t from 'tap';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertOnlyOwnFiles,
  mib,
  parseLogText,
  pathArgs,
  procStats,
  RawClient,
  rng,
  sampleRss,
  startChild,
  testSeed,
  type Rng,
} from './fixtures/reliability.js';
import { tempDir } from './fixtures/server.js';

const CHUNKS = 100_000;
const CONNECTIONS = 32;
/** Generous: the server idles at ~80 MiB; a leak per chunk or per connection would cross it. */
const RSS_LIMIT_MIB = 200;
const LATENCY_LIMIT_MS = 1_000;

t.setTimeout(120_000);

const VERBS = ['HELLO', 'VALUE', 'EVEN', 'ODD', 'PING', 'HELP', 'QUIT'];
const NEAR_MISSES = [
  'VALUE 07',
  'VALUE 100',
  'VALUE -1',
  'VALUE +5',
  'VALUE 1e1',
  'VALUE 5.0',
  'VALUE 0x1',
  'VALUE',
  'VALUE 5 6',
  'HELLO',
  'HELLO ../../etc/passwd',
  'HELLO /etc/passwd',
  'HELLO a/b',
  `HELLO ${'x'.repeat(65)}`,
  'HELLO fz1 fz2',
  'PING now',
  'EVEN 5',
  'HELP me',
  'QUIT now',
  'quıt',
  'ＰＩＮＧ',
  'VALUE ٣',
  'hello\u00a0fz1',
  '__proto__',
  'constructor',
  'FROB',
];
const INVALID_UTF8 = [
  [0xc0, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xff, 0xfe],
  [0xe2, 0x82],
  [0x80],
  [0xf4, 0x90, 0x80, 0x80],
];

function mixCase(random: Rng, word: string): string {
  return [...word].map((ch) => (random() < 0.3 ? ch.toLowerCase() : ch)).join('');
}

/** One fuzz segment: a request, a near miss, or garbage, with a random terminator. */
function segment(random: Rng): Buffer {
  const space = () => random.pick([' ', '  ', '\t', ' \t ']);
  let body: Buffer;
  const kind = random();
  if (kind < 0.35) {
    const verb = random.pick(VERBS);
    if (verb === 'QUIT' && random() < 0.9) return segment(random);
    const arg =
      verb === 'HELLO' ? `fz${random.int(20)}` : verb === 'VALUE' ? `${random.int(100)}` : '';
    const pad = () => (random() < 0.2 ? space() : '');
    body = Buffer.from(`${pad()}${mixCase(random, verb)}${arg ? space() + arg : ''}${pad()}`);
  } else if (kind < 0.5) {
    body = Buffer.from(random.pick(NEAR_MISSES));
  } else if (kind < 0.7) {
    body = Buffer.from(Array.from({ length: random.int(60) }, () => random.int(256)));
  } else if (kind < 0.8) {
    const parts = [
      '\0',
      '\x1b[31m',
      '\x1b]0;pwned\x07',
      '"',
      '\\',
      '\r',
      '\v',
      '\f',
      '\x7f',
      '\u009b',
    ];
    body = Buffer.from(
      Array.from({ length: 1 + random.int(6) }, () => random.pick(parts)).join(''),
    );
  } else if (kind < 0.88) {
    const bytes = Array.from({ length: 1 + random.int(4) }, () => random.pick(INVALID_UTF8)).flat();
    body = Buffer.concat([Buffer.from(random.pick(['PING ', 'HELLO ', ''])), Buffer.from(bytes)]);
  } else if (kind < 0.95) {
    body = Buffer.from(`${random.pick(VERBS)}\r${random.pick(VERBS)}\r`); // CR without LF
  } else if (kind < 0.998) {
    body = Buffer.from(random.pick(['', ' ', '\t', ' \t \t']));
  } else {
    // Overlong: more than the 1024-byte limit with no LF.
    body = Buffer.alloc(1025 + random.int(2000), random.pick(['A', ' ', '\r', '\0']));
  }
  const end = random();
  const terminator = end < 0.7 ? '\n' : end < 0.9 ? '\r\n' : end < 0.95 ? '\r' : '';
  return Buffer.concat([body, Buffer.from(terminator)]);
}

/** A connection's worth of input, cut at random points into random-length chunks. */
function chunks(random: Rng, count: number): Buffer[] {
  const segments: Buffer[] = [];
  let size = 0;
  while (size < count * 40) {
    const s = segment(random);
    segments.push(s);
    size += s.length;
  }
  const stream = Buffer.concat(segments);
  const out: Buffer[] = [];
  for (let at = 0; at < stream.length && out.length < count;) {
    const r = random();
    const length = 1 + (r < 0.7 ? random.int(16) : r < 0.95 ? random.int(256) : random.int(2048));
    out.push(stream.subarray(at, at + length));
    at += length;
  }
  return out;
}

t.test('fuzz: 100,000 random chunks', async (t) => {
  const seed = testSeed();
  t.comment(`seed ${seed} (PARITY_SEED=${seed} replays the input)`);
  const dir = tempDir(t);
  mkdirSync(join(dir, 'state'));
  mkdirSync(join(dir, 'logs'));
  const statePath = join(dir, 'state', 'values.json');
  const logPath = join(dir, 'logs', 'messages.log');
  const server = await startChild(t, pathArgs(statePath, logPath));
  const rssAtStart = procStats(server.pid).rssKiB;
  const rss = sampleRss(t, server.pid);

  let sent = 0;
  let done = false;
  const stats = {
    connections: 0,
    resets: 0,
    replies: 0,
    malformed: [] as string[],
    cut: [] as string[],
  };

  // The well-behaved client: exact answers, all along.
  const good = { rounds: 0, wrong: [] as string[], maxLatencyMs: 0 };
  const wellBehaved = (async () => {
    const client = await RawClient.connect(server.port, t);
    let value = 0;
    const exchange = async (request: string, expect: (reply: string) => boolean) => {
      const started = performance.now();
      const [reply] = await client.request(request);
      good.maxLatencyMs = Math.max(good.maxLatencyMs, performance.now() - started);
      if (!expect(reply!)) good.wrong.push(`${request} -> ${reply}`);
    };
    await exchange('HELLO well-behaved', (r) => r === 'VALUE 0');
    while (!done) {
      value = (value + 37) % 100;
      await exchange(`VALUE ${value}`, (r) => r === `OK ${value}`);
      await exchange('PING', (r) => r === 'PONG');
      await exchange('EVEN', (r) => /^EVEN ([1-9]?[02468])$/.test(r));
      await exchange('ODD', (r) => /^ODD ([1-9]?[13579])$/.test(r));
      await exchange('HELP', (r) => r.startsWith('HELP commands: '));
      await exchange('HELLO well-behaved', (r) => r === `VALUE ${value}`);
      good.rounds++;
    }
    client.socket.destroy();
  })();

  const fuzzer = async () => {
    while (sent < CHUNKS) {
      // One generator per connection, so its input replays whatever the interleaving.
      const random = rng((seed + ++stats.connections * 0x9e3779b1) >>> 0);
      const input = chunks(random, Math.min(CHUNKS - sent, 20 + random.int(400)));
      const client = await RawClient.connect(server.port);
      let i = 0;
      for (const chunk of input) {
        if (client.isClosed || client.socket.writableEnded || client.socket.readableEnded) break;
        sent++;
        if (!client.send(chunk)) {
          await Promise.race([new Promise((r) => client.socket.once('drain', r)), client.closed]);
        }
        // Yield now and then, so the other connections' chunks interleave with this one's.
        if (++i % 8 === 0) await new Promise(setImmediate);
      }
      if (random() < 0.2) {
        client.socket.resetAndDestroy(); // an abrupt peer: RST, replies not read
        stats.resets++;
      } else {
        client.socket.end(); // half-close: the server answers what it got, then closes
        await client.closed;
        // The server closed after its last reply: no reply may be cut short.
        if (client.tail !== '' && stats.cut.length < 5) stats.cut.push(JSON.stringify(client.tail));
      }
      stats.replies += client.lines.length;
      if (client.malformed.length > 0 && stats.malformed.length < 10) {
        stats.malformed.push(...client.malformed.slice(0, 3).map((l) => JSON.stringify(l)));
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, fuzzer));
  const seconds = (performance.now() - started) / 1000;
  done = true;
  await wellBehaved;
  const peak = rss.stop();

  t.ok(sent >= CHUNKS, `${sent} chunks sent over ${stats.connections} connections`);
  t.equal(server.child.exitCode, null, 'the server process is still running');
  t.same(stats.malformed, [], `every one of ${stats.replies} replies matches the grammar`);
  t.same(stats.cut, [], 'no reply was cut short');
  t.same(good.wrong, [], `the well-behaved client got ${good.rounds * 6 + 1} correct answers`);
  t.ok(good.rounds > 5, `it kept going throughout: ${good.rounds} rounds`);
  t.ok(
    good.maxLatencyMs < LATENCY_LIMIT_MS,
    `its slowest reply took ${good.maxLatencyMs.toFixed(0)} ms`,
  );
  t.ok(mib(peak) < RSS_LIMIT_MIB, `peak RSS ${mib(peak)} MiB (start ${mib(rssAtStart)} MiB)`);

  const exit = await server.kill('SIGTERM');
  t.equal(exit.code, 0, 'and stops cleanly');
  assertOnlyOwnFiles(t, dir);
  const log = readFileSync(logPath);
  const { records, bad } = parseLogText(log.toString('utf8'));
  t.same(bad.slice(0, 3), [], `every one of ${records.length} log records parses`);
  t.notOk(
    log.some((byte) => byte < 0x20 && byte !== 0x0a),
    'no raw control byte in the log (only the LF between records)',
  );
  t.comment(
    `FIGURES fuzz: chunks=${sent} connections=${stats.connections} resets=${stats.resets} ` +
      `replies=${stats.replies} malformed=${stats.malformed.length} seconds=${seconds.toFixed(1)} ` +
      `rssStartMiB=${mib(rssAtStart)} rssPeakMiB=${mib(peak)} goodRounds=${good.rounds} ` +
      `goodMaxLatencyMs=${good.maxLatencyMs.toFixed(0)} logRecords=${records.length}`,
  );
});
