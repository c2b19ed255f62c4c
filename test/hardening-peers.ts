/**
 * Issue 11: no peer can hurt the others. Against the real bin/server: a peer flooding at full speed
 * (blank lines, PINGs it never reads, garbage, overlong lines) leaves a well-behaved client's every
 * VALUE answered OK in time, grows the log only with what was answered, and keeps RSS bounded;
 * blank lines do not hold a connection past the idle timeout; one address cannot take every slot;
 * --max-ids caps the ids; a busy port creates no file.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  createReadStream,
  existsSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
} from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  mib,
  parseLogText,
  pathArgs,
  RawClient,
  sampleRss,
  startChild,
  type Json,
} from './fixtures/reliability.js';
import { LineClient, ROOT, SERVER_BIN, startTestServer, tempDir } from './fixtures/server.js';
import { overrideHandle } from './fixtures/failing-fs.js';
import type { FileHandle } from 'node:fs/promises';
import { startServer } from '../src/server/server.js';

/** Each flood's length; PARITY_FLOOD_MS=10000 gives the 10 s runs. */
const FLOOD_MS = Number(process.env.PARITY_FLOOD_MS ?? 3_000);
/** The bound the README states for the server's RSS under any one flood. */
const FLOOD_RSS_MIB = 250;
/**
 * Starvation, not speed: before the per-turn line budget a flood held the event loop for whole
 * 2 MiB reads, and the well-behaved client's p99 was 1.5-2 s. With it, p99 is 28-120 ms when the
 * flood runs alone (README, "Hostile peers"); inside the parallel suite on 2 shared cores it has
 * been 150-400 ms. The figure is measured, not asserted: the test asserts that nobody starves.
 */
const P99_MS = 1_000;

t.setTimeout(120_000);

async function child(t: Test, extra: string[] = []) {
  const dir = tempDir(t);
  const logPath = join(dir, 'messages.log');
  const server = await startChild(t, [...pathArgs(join(dir, 'state.json'), logPath), ...extra]);
  return { server, logPath, dir };
}

/** Runs test/fixtures/flooder.mjs; resolves with what it sent. */
async function flood(t: Test, port: number, kind: string, ms: number): Promise<Json> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'test/fixtures/flooder.mjs'), `${port}`, kind, `${ms}`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  t.teardown(() => void proc.kill('SIGKILL'));
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = await once(proc, 'close');
  t.equal(code, 0, `the ${kind} flooder ran`);
  return JSON.parse(out) as Json;
}

/** Sends VALUE every 50 ms until `stop`, timing each OK; any other reply is a failure. */
async function wellBehaved(t: Test, port: number, stop: Promise<unknown>) {
  const client = await LineClient.connect(t, port);
  t.same(await client.request('HELLO good'), ['VALUE 0']);
  let done = false;
  void stop.then(() => (done = true));
  const latencies: number[] = [];
  const wrong: string[] = [];
  for (let i = 1; !done; i++) {
    const start = performance.now();
    const [reply] = await client.request(`VALUE ${i % 100}`);
    latencies.push(performance.now() - start);
    if (reply !== `OK ${i % 100}`) wrong.push(reply ?? '(none)');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]!;
  return { count: latencies.length, p99, wrong };
}

/**
 * Counts a message log's records as it streams by: a 10 s PING flood logs over 512 MiB, more than
 * one string can hold, so the log is never read whole.
 */
async function tallyLog(path: string) {
  const tally = {
    records: 0,
    ins: 0,
    outs: 0,
    connections: 0,
    blankRecords: 0,
    blanks: 0,
    resetAfterBye: false,
    bad: [] as string[],
  };
  for await (const line of createInterface({
    input: createReadStream(path),
    crlfDelay: Infinity,
  })) {
    if (line === '') continue;
    let r: Json;
    try {
      r = JSON.parse(line) as Json;
    } catch {
      if (tally.bad.length < 10) tally.bad.push(line.slice(0, 200));
      continue;
    }
    tally.records++;
    if (r.dir === 'out') tally.outs++;
    if (r.dir === 'in' && typeof r.line === 'string') tally.ins++;
    if (r.event === 'open') tally.connections++;
    if (typeof r.blank === 'number') {
      tally.blankRecords++;
      tally.blanks += r.blank;
    }
    if (r.event === 'close' && r.reason === 'kept sending after BYE') tally.resetAfterBye = true;
  }
  return tally;
}

for (const kind of ['blank', 'ping', 'garbage', 'overlong']) {
  t.test(`a ${kind} flood: the others are served, the log grows only with answers`, async (t) => {
    const { server, logPath } = await child(t, ['--drain-timeout-ms', '1000']);
    const rss = sampleRss(t, server.pid);
    const flooding = flood(t, server.port, kind, FLOOD_MS);
    const good = await wellBehaved(t, server.port, flooding);
    const sent = await flooding;
    const peakMiB = mib(rss.stop());
    t.equal((await server.kill('SIGTERM')).code, 0, 'a clean stop');

    t.same(good.wrong, [], `every one of ${good.count} VALUEs was answered OK`);
    t.ok(
      good.p99 <= P99_MS,
      `the well-behaved client's p99 ${good.p99.toFixed(1)} ms <= ${P99_MS}`,
    );
    t.ok(peakMiB < FLOOD_RSS_MIB, `peak RSS ${peakMiB} MiB < ${FLOOD_RSS_MIB} MiB`);

    const logBytes = statSync(logPath).size;
    const log = await tallyLog(logPath);
    t.same(log.bad, [], 'every record parses');
    // A request line is logged only when it is answered (an overlong line is not a line).
    t.ok(
      log.ins <= log.outs + log.connections,
      `${log.ins} request records for ${log.outs} replies`,
    );
    t.ok(
      log.records <= 2 * log.outs + log.blankRecords + 3 * log.connections,
      `${log.records} records, ${log.outs} replies`,
    );
    if (kind === 'garbage') {
      // Cut off at an overlong line, it keeps streaming: past 64 KiB the server stops reading
      // (and copying) what it would only discard, and resets it.
      t.ok(
        log.resetAfterBye,
        'a peer that keeps sending after its BYE is reset, not read for the whole linger',
      );
    }
    if (kind === 'blank') {
      t.equal(log.blanks, sent.lfs, `all ${sent.lfs} blank lines are counted in the log`);
      t.ok(
        log.blankRecords <= Number(sent.bytes) / 4096,
        `${log.blankRecords} blank records for ${mib(Number(sent.bytes) / 1024)} MiB of LFs`,
      );
    }
    t.comment(
      `${kind}: sent ${mib(Number(sent.bytes) / 1024)} MiB over ${sent.connections} connections; ` +
        `log ${mib(logBytes / 1024)} MiB (${log.records} records, ${log.outs} replies); ` +
        `good client ${good.count} VALUEs, p99 ${good.p99.toFixed(1)} ms; peak RSS ${peakMiB} MiB`,
    );
  });
}

t.test('blank lines do not count as activity for the idle timeout; requests do', async (t) => {
  const { server } = await child(t, ['--idle-timeout-ms', '300']);
  const blank = await RawClient.connect(server.port, t);
  const busy = await RawClient.connect(server.port, t);
  const start = performance.now();
  const timer = setInterval(() => {
    if (!blank.isClosed) blank.send('\n');
    if (!busy.isClosed) busy.send('PING\n');
  }, 50);
  t.teardown(() => clearInterval(timer));
  await blank.closed;
  const after = performance.now() - start;
  clearInterval(timer);
  t.match(blank.lines.at(-1), /^BYE IDLE_TIMEOUT /, 'the blank-line sender is timed out');
  t.ok(after < 1_500, `after ${after.toFixed(0)} ms (idle timeout 300 ms)`);
  t.notOk(busy.isClosed, 'the PING sender is still connected');
  t.ok(
    busy.lines.every((l) => l === 'PONG'),
    'and got only PONGs',
  );
});

t.test('--max-clients-per-address: one address cannot take every slot', async (t) => {
  const { server, logPath } = await child(t, ['--max-clients-per-address', '3']);
  const admitted = await Promise.all([1, 2, 3].map(() => RawClient.connect(server.port, t)));
  for (const c of admitted) t.same(await c.request('PING'), ['PONG']);
  const fourth = await RawClient.connect(server.port, t);
  await fourth.closed;
  t.match(fourth.lines, [/^BYE SERVER_BUSY too many clients from your address$/]);
  // Another loopback address is another host to the server.
  const other = connect({ host: '127.0.0.1', port: server.port, localAddress: '127.0.0.2' });
  t.teardown(() => other.destroy());
  await once(other, 'connect');
  const fromOther = new RawClient(other);
  t.same(await fromOther.request('PING'), ['PONG'], 'a client from 127.0.0.2 is admitted');
  admitted[0]!.socket.end();
  await admitted[0]!.closed;
  // The slot is free once the server has seen the close: retry until it has.
  let again: RawClient;
  for (;;) {
    again = await RawClient.connect(server.port, t);
    const [line] = await again.request('PING').catch(() => [] as string[]);
    if (line === 'PONG') break;
  }
  t.pass('a slot freed by a close is given to the next client from that address');
  t.equal((await server.kill('SIGTERM')).code, 0);
  const refused = parseLogText(readFileSync(logPath, 'utf8')).records.filter(
    (r) => r.event === 'refused',
  );
  t.ok(refused.length >= 1);
  t.match(refused[0], { reason: 'SERVER_BUSY', limit: 'max-clients-per-address' });
});

t.test('--max-ids: a new id past the cap is ERR ID_LIMIT; known ids keep working', async (t) => {
  const { server, dir } = await child(t, ['--max-ids', '2']);
  const a = await RawClient.connect(server.port, t);
  t.same(await a.request('HELLO a', 'VALUE 1'), ['VALUE 0', 'OK 1']);
  const b = await RawClient.connect(server.port, t);
  const c = await RawClient.connect(server.port, t);
  // Both new ids pass HELLO while one slot is free; only the first VALUE gets it.
  t.same(await b.request('HELLO b'), ['VALUE 0']);
  t.same(await c.request('HELLO c'), ['VALUE 0']);
  t.same(await b.request('VALUE 2'), ['OK 2']);
  const [refused] = await c.request('VALUE 3');
  t.match(refused, /^ERR ID_LIMIT /, 'the store is full: the second new id is refused at VALUE');
  const d = await RawClient.connect(server.port, t);
  const [hello] = await d.request('HELLO d');
  t.match(hello, /^ERR ID_LIMIT the server holds its maximum of 2 ids/);
  t.same(await d.request('PING', 'HELLO a', 'VALUE 9'), ['PONG', 'VALUE 1', 'OK 9'], 'open');
  // Pipelined behind a refused HELLO, requests see the connection as it was before it.
  const e = await RawClient.connect(server.port, t);
  const lines = ['HELLO e', 'VALUE 5', 'PING', 'HELLO b', 'VALUE 7'];
  t.match(
    await e.request(...lines),
    [/^ERR ID_LIMIT /, /^ERR NOT_IDENTIFIED /, 'PONG', 'VALUE 2', 'OK 7'],
    'pipelined',
  );
  t.equal((await server.kill('SIGTERM')).code, 0);
  t.same(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')), { a: 9, b: 7 });
});

t.test('a busy port is one clear line, and creates no file or folder', async (t) => {
  const busy = createServer().listen(0, '127.0.0.1');
  await once(busy, 'listening');
  t.teardown(() => busy.close());
  const { port } = busy.address() as AddressInfo;
  const dir = tempDir(t);
  const state = join(dir, 'state', 'values.json');
  const log = join(dir, 'logs', 'messages.log');
  // Not runToExit: it adds its own --port.
  const args = ['--port', `${port}`, '--no-http', ...pathArgs(state, log)];
  const proc = spawn(process.execPath, [SERVER_BIN, ...args]);
  t.teardown(() => void proc.kill('SIGKILL'));
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = await once(proc, 'close');
  const result = { code, stderr };
  t.equal(result.code, 1);
  t.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr.trim()}`);
  t.match(result.stderr, new RegExp(`${port}`));
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace');
  t.same(readdirSync(dir), [], 'nothing was created');
  t.notOk(existsSync(state));
});

t.test(
  'connections that arrive while the files open wait; a reset then does no harm',
  async (t) => {
    let release!: () => void;
    const opened = new Promise<void>((resolve) => (release = resolve));
    let listening!: () => void;
    const gate = new Promise<void>((resolve) => (listening = resolve));
    const logFs = {
      ...fsp,
      // The log opens after the listener is up: hold it there, as a slow disk would.
      open: (async (...args: Parameters<typeof fsp.open>) => {
        listening();
        await opened;
        return fsp.open(...args);
      }) as typeof fsp.open,
    };
    const dir = tempDir(t);
    const starting = startServer({
      host: '127.0.0.1',
      port: 0,
      statePath: join(dir, 'state.json'),
      logPath: join(dir, 'messages.log'),
      logFs,
    });
    await gate;
    const port = await listeningPort();
    const reset = connect({ host: '127.0.0.1', port });
    reset.on('error', () => {});
    await once(reset, 'connect');
    reset.resetAndDestroy();
    const waiting = await RawClient.connect(port, t);
    waiting.send('PING\n');
    release();
    const server = await starting;
    t.teardown(() => server.close());
    t.same(await waiting.untilLines(1), ['PONG'], 'the early client is served once the files open');
    t.equal(server.connections, 1, 'the reset one is gone, and did not crash the start');

    /** The port the server under test bound: the one 127.0.0.1 listener this process opened. */
    async function listeningPort(): Promise<number> {
      const own = readdirSync('/proc/self/fd')
        .map((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`);
          } catch {
            return '';
          }
        })
        .filter((l) => l.startsWith('socket:['))
        .map((l) => l.slice(8, -1));
      for (const row of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
        const f = row.trim().split(/\s+/);
        if (f[3] === '0A' && own.includes(f[9]!)) return parseInt(f[1]!.split(':')[1]!, 16);
      }
      throw new Error('no listener found');
    }
  },
);

t.test('a request line the log had to drop is refused, and its value never applied', async (t) => {
  const disk = { full: false };
  const logFs = {
    ...fsp,
    open: (async (...args: Parameters<typeof fsp.open>) => {
      const real = await fsp.open(...args);
      return overrideHandle(real, {
        write: (async (...w: Parameters<FileHandle['write']>) => {
          if (disk.full) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
          return (real.write as (...a: unknown[]) => unknown)(...w);
        }) as FileHandle['write'],
      });
    }) as typeof fsp.open,
  };
  const { server, port } = await startTestServer(t, { logFs, logBufferBytes: 4096 });
  const c = await RawClient.connect(port, t);
  t.same(await c.request('HELLO d', 'VALUE 1'), ['VALUE 0', 'OK 1']);
  disk.full = true;
  // ~70-byte records: the 4 KiB buffer is full after a few dozen lines, then lines are dropped.
  const replies = await c.request(
    ...Array.from({ length: 200 }, (_, i) => `VALUE ${(i % 98) + 2}`),
  );
  t.notOk(
    replies.some((r) => r.startsWith('OK')),
    'no OK while the log cannot take its line',
  );
  const dropped = replies.filter((r) => r.includes('the message log is full'));
  t.ok(dropped.length > 0, `${dropped.length} requests refused for a dropped line`);
  disk.full = false;
  // The last VALUE whose line the log kept was applied (answered ERR STORAGE: its flush failed,
  // and it is written at the next); every later one was dropped, and must not have been applied.
  const last = replies.length - 1 - [...replies].reverse().findIndex((r) => !r.includes('full'));
  const other = await RawClient.connect(port, t);
  let hello = '';
  // The log retries on its timer: until it has caught up, a HELLO is refused too, as a real
  // client would see; it retries.
  for (let i = 0; i < 100; i++) {
    [hello = ''] = await other.request('HELLO d');
    if (!hello.startsWith('ERR STORAGE')) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.equal(hello, `VALUE ${(last % 98) + 2}`, 'the last value whose line was kept, no later one');
  t.equal(server.store.peek('d'), (last % 98) + 2);
});
