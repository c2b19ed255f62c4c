#!/usr/bin/env node
/**
 * The load generator. Run directly, it drives a server that is already listening:
 *
 *   node bench/loadgen.mjs flood --port 7070 --conns 50 --inflight 16 --seconds 10
 *   node bench/loadgen.mjs spec  --port 7070 --conns 4000 --procs 2 --seconds 10
 *
 * and prints one JSON summary. bench/run.mjs uses the same code through lib/load.mjs, which forks
 * this file once per generator process (`--worker`); the worker half is below.
 *
 * flood: every connection says HELLO, then keeps `inflight` VALUE requests outstanding, sending
 *   one more for each reply (a chunk of k replies is answered by one write of k requests).
 * spec:  every connection behaves like bin/client: HELLO, then VALUE every 500 ms on a drift-free
 *   grid (counter + increment, mod 100), and EVEN or ODD every 3-5 s whose answer becomes the
 *   increment. Every reply is checked against the protocol; anything unexpected is an error.
 * idle:  HELLO, then silence (for memory per connection).
 *
 * --redis speaks to Redis instead, with inline commands and the same timing: `SET id 0` for HELLO
 * (answered `+OK`), `SET id n` for VALUE n (`+OK`), and `INCR sw:id` for EVEN/ODD (`:n`). Every
 * reply is one line, as in Parity's protocol; its CR is dropped.
 *
 * Latency is recorded for each request sent inside the measuring window, from the write to its
 * reply line, including replies that arrive after the window closes (a slow reply is not dropped).
 */
import { connect } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { parseArgs } from 'node:util';
import { Histogram } from './lib/hist.mjs';

const TICK_MS = 500;
const SWITCH_MIN_MS = 3_000;
const SWITCH_MAX_MS = 5_000;
/** Scheduler resolution of the spec clients' timers (one wheel per process, not one timer each). */
const SLOT_MS = 5;
/** 4096 × 5 ms = 20 s of horizon, more than the longest delay ever scheduled (5 s). */
const SLOTS = 4096;
const CONNECT_TIMEOUT_MS = 15_000;

/**
 * @typedef {{
 *   mode: 'flood' | 'spec' | 'idle', protocol: 'parity' | 'redis',
 *   host: string, port: number, conns: number, inflight: number,
 *   localAddresses: string[], idPrefix: string, connectConcurrency: number, drainMs: number,
 * }} WorkerConfig
 */

if (process.argv.includes('--worker')) {
  process.once('message', (/** @type {{ type: string, cfg: WorkerConfig }} */ msg) =>
    worker(msg.cfg),
  );
} else if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await cli(process.argv.slice(2));
}

async function cli(/** @type {string[]} */ argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7070' },
      conns: { type: 'string', default: '50' },
      inflight: { type: 'string', default: '16' },
      procs: { type: 'string', default: '1' },
      'src-addrs': { type: 'string', default: '1' },
      seconds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '1' },
      redis: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const mode = positionals[0];
  if (values.help || (mode !== 'flood' && mode !== 'spec' && mode !== 'idle')) {
    process.stderr.write(
      'usage: node bench/loadgen.mjs flood|spec|idle [--host H] [--port P] [--conns N]\n' +
        '         [--inflight W] [--procs K] [--src-addrs A] [--seconds S] [--warmup S]\n',
    );
    return 2;
  }
  const { runLoad } = await import('./lib/load.mjs');
  const result = await runLoad({
    mode,
    protocol: values.redis ? 'redis' : 'parity',
    host: values.host,
    port: Number(values.port),
    conns: Number(values.conns),
    inflight: Number(values.inflight),
    procs: Number(values.procs),
    srcAddrs: Number(values['src-addrs']),
    warmupMs: Number(values.warmup) * 1000,
    durationMs: Number(values.seconds) * 1000,
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

/** One generator process: its share of the connections, driven by messages from the coordinator. */
function worker(/** @type {WorkerConfig} */ cfg) {
  const REDIS = cfg.protocol === 'redis';
  /** @param {object} msg */
  const send = (msg) => process.send?.(msg);
  /** @type {'connecting' | 'ready' | 'running' | 'stopping' | 'closing'} */
  let phase = 'connecting';
  let markAt = Infinity; // requests sent at or after this are measured
  let stopAt = Infinity;
  let windowReplies = 0;
  let sent = 0;
  let answered = 0;
  let lateTicks = 0;
  let measuredOpen = 0; // measured requests not yet answered
  const hist = new Histogram();
  /** @type {Record<string, number>} */
  const errors = {};
  const lag = monitorEventLoopDelay({ resolution: 10 });
  let cpuAtMark = process.cpuUsage();
  let drained = () => {};

  /** @param {string} kind */
  const error = (kind) => (errors[kind] = (errors[kind] ?? 0) + 1);

  class Client {
    /** @param {number} index */
    constructor(index) {
      this.index = index;
      this.id = `${cfg.idPrefix}-${index}`;
      this.rest = '';
      /** @type {number[]} send times of outstanding requests, oldest first (from `head`) */
      this.times = [];
      /** @type {string[]} what each outstanding request expects ('' = not checked) */
      this.expect = [];
      this.head = 0;
      this.alive = false;
      this.counter = 0;
      this.increment = 1;
      this.nextTick = 0;
      this.value = index % 100; // flood: next value to send
      this.socket = connect({
        host: cfg.host,
        port: cfg.port,
        localAddress: cfg.localAddresses[index % cfg.localAddresses.length],
      });
      this.socket.setNoDelay(true);
      this.socket.setEncoding('latin1');
      // Until HELLO is answered, not only until the handshake: a connection the kernel completed
      // but the server never accepted (its listen queue overflowed) looks connected here and
      // is never answered, and a connect lane awaiting it stalled a --full run for 10 minutes.
      this.socket.setTimeout(CONNECT_TIMEOUT_MS);
      this.socket.on('timeout', () => this.fail('connect timeout'));
      this.socket.on('connect', () => {
        this.alive = true;
        if (REDIS) this.write(`SET ${this.id} 0\r\n`, 1, 'VALUE');
        else this.write(`HELLO ${this.id}\n`, 1, 'VALUE');
      });
      this.socket.on('data', (/** @type {string} */ text) => this.onData(text));
      this.socket.on('end', () => this.fail('server closed'));
      this.socket.on('error', (/** @type {NodeJS.ErrnoException} */ err) =>
        this.fail(`${this.alive ? 'socket' : 'connect'} ${err.code ?? err.message}`),
      );
      /** @type {(ok: boolean) => void} */
      this.settle = () => {};
      this.hello = new Promise((resolve) => (this.settle = resolve));
    }

    /** @param {string} reason */
    fail(reason) {
      if (phase !== 'closing') {
        error(reason);
        this.countUnanswered();
      }
      this.alive = false;
      this.socket.destroy();
      this.settle(false);
    }

    countUnanswered() {
      for (let i = this.head; i < this.times.length; i++) {
        if (this.times[i] >= markAt) {
          error('unanswered');
          measuredOpen--;
        }
      }
      this.times.length = this.expect.length = this.head = 0;
      if (phase === 'stopping' && measuredOpen <= 0) drained();
    }

    /**
     * @param {string} text one or more request lines, each with its LF
     * @param {number} n how many lines
     * @param {string} expect the reply prefix each should get
     */
    write(text, n, expect) {
      const now = performance.now();
      for (let i = 0; i < n; i++) {
        this.times.push(now);
        this.expect.push(expect);
      }
      if (now >= markAt && phase === 'running') measuredOpen += n;
      sent += n;
      this.socket.write(text);
    }

    /** @param {string} text */
    onData(text) {
      const data = this.rest === '' ? text : this.rest + text;
      let start = 0;
      let n = 0;
      const now = performance.now();
      for (let lf = data.indexOf('\n'); lf !== -1; lf = data.indexOf('\n', start)) {
        const line =
          REDIS && data.charCodeAt(lf - 1) === 13
            ? data.slice(start, lf - 1)
            : data.slice(start, lf);
        start = lf + 1;
        n++;
        if (this.head >= this.times.length) {
          error(`unexpected reply ${line.slice(0, 24)}`);
          continue;
        }
        const t = this.times[this.head];
        const expect = this.expect[this.head];
        this.head++;
        answered++;
        if (t >= markAt && t < stopAt) {
          hist.record(now - t);
          measuredOpen--;
        }
        if (now >= markAt && now < stopAt) windowReplies++;
        // Exact for spec's `OK n`; a prefix for flood's `OK ` and the rest. Redis: `+OK`, `:n`.
        const ok = REDIS
          ? line.startsWith(expect === 'VALUE' || expect.startsWith('OK') ? '+OK' : ':')
          : expect.length > 3 && expect.startsWith('OK ')
            ? line === expect
            : line.startsWith(expect);
        if (!ok) {
          error(`reply ${line.slice(0, 24)} to a request expecting ${expect}`);
          continue;
        }
        this.onReply(expect, line);
      }
      this.rest = start < data.length ? data.slice(start) : '';
      if (this.head > 1024 && this.head * 2 > this.times.length) {
        this.times.splice(0, this.head);
        this.expect.splice(0, this.head);
        this.head = 0;
      }
      if (cfg.mode === 'flood' && phase === 'running') this.flood(n);
      if (phase === 'stopping' && measuredOpen <= 0) drained();
    }

    /**
     * @param {string} kind
     * @param {string} line
     */
    onReply(kind, line) {
      if (kind === 'VALUE') {
        // The answer to HELLO: the counter starts from the stored value (as bin/client does).
        this.counter = REDIS ? 0 : Number(line.slice(6));
        this.socket.setTimeout(0);
        this.settle(true);
        if (cfg.mode === 'spec') this.startSpec();
      } else if (kind === 'EVEN ' || kind === 'ODD ') {
        const n = Number(line.slice(kind.length));
        if (!Number.isInteger(n) || n % 2 !== (kind === 'ODD ' ? 1 : 0)) error(`bad ${line}`);
        else this.increment = n;
      }
    }

    /** @param {number} n how many requests to send */
    flood(n) {
      if (!this.alive || n === 0) return;
      let text = '';
      for (let i = 0; i < n; i++) {
        this.value = this.value === 99 ? 0 : this.value + 1; // always a change: every OK is a commit
        text += REDIS ? `SET ${this.id} ${this.value}\r\n` : `VALUE ${this.value}\n`;
      }
      this.write(text, n, 'OK ');
    }

    startSpec() {
      const now = performance.now();
      this.nextTick = now + TICK_MS;
      schedule(this.nextTick, this, 0);
      schedule(now + switchDelay(), this, 1);
    }

    tick() {
      if (!this.alive || phase === 'stopping' || phase === 'closing') return;
      const now = performance.now();
      this.counter = (this.counter + this.increment) % 100;
      if (REDIS) this.write(`SET ${this.id} ${this.counter}\r\n`, 1, `OK ${this.counter}`);
      else this.write(`VALUE ${this.counter}\n`, 1, `OK ${this.counter}`);
      // Drift-free grid, like src/client/ticker.ts: missed grid points are skipped, not burst.
      this.nextTick += TICK_MS;
      while (this.nextTick <= now) {
        this.nextTick += TICK_MS;
        lateTicks++;
      }
      schedule(this.nextTick, this, 0);
    }

    switch() {
      if (!this.alive || phase === 'stopping' || phase === 'closing') return;
      schedule(performance.now() + switchDelay(), this, 1);
      if (REDIS) this.write(`INCR sw:${this.id}\r\n`, 1, ':');
      else if (Math.random() < 0.5) this.write('EVEN\n', 1, 'EVEN ');
      else this.write('ODD\n', 1, 'ODD ');
    }
  }

  const switchDelay = () =>
    SWITCH_MIN_MS + Math.floor(Math.random() * (SWITCH_MAX_MS - SWITCH_MIN_MS + 1));

  // The timing wheel: slot s holds (client, kind) pairs due at s × SLOT_MS.
  /** @type {Array<Array<Client | number>>} */
  const wheel = Array.from({ length: SLOTS }, () => []);
  let wheelPos = Math.floor(performance.now() / SLOT_MS);
  /** @type {ReturnType<typeof setInterval> | null} */
  let wheelTimer = null;
  /**
   * @param {number} at
   * @param {Client} client
   * @param {number} kind 0 tick, 1 switch
   */
  function schedule(at, client, kind) {
    const slot = Math.max(wheelPos + 1, Math.ceil(at / SLOT_MS));
    wheel[slot % SLOTS].push(client, kind);
    wheelTimer ??= setInterval(turn, SLOT_MS);
  }
  function turn() {
    const now = Math.floor(performance.now() / SLOT_MS);
    while (wheelPos < now) {
      wheelPos++;
      const due = wheel[wheelPos % SLOTS];
      if (due.length === 0) continue;
      wheel[wheelPos % SLOTS] = [];
      for (let i = 0; i < due.length; i += 2) {
        const client = /** @type {Client} */ (due[i]);
        if (due[i + 1] === 0) client.tick();
        else client.switch();
      }
    }
  }

  /** @type {Client[]} */
  const clients = [];
  const connectStart = performance.now();

  async function connectAll() {
    let next = 0;
    const lane = async () => {
      while (next < cfg.conns) {
        const client = new Client(next++);
        clients.push(client);
        await client.hello;
      }
    };
    await Promise.all(Array.from({ length: Math.min(cfg.connectConcurrency, cfg.conns) }, lane));
    const ok = clients.filter((c) => c.alive).length;
    phase = 'ready';
    send({ type: 'connected', ok, failed: cfg.conns - ok, ms: performance.now() - connectStart });
  }

  process.on('message', (/** @type {{ type: string }} */ msg) => {
    if (msg.type === 'go') {
      phase = 'running';
      if (cfg.mode === 'flood') for (const c of clients) c.flood(cfg.inflight);
    } else if (msg.type === 'mark') {
      phase = 'running';
      markAt = performance.now();
      cpuAtMark = process.cpuUsage();
      lag.reset();
      lag.enable();
    } else if (msg.type === 'stop') void stop();
    else if (msg.type === 'exit') {
      phase = 'closing';
      if (wheelTimer) clearInterval(wheelTimer);
      // Reset rather than close: a close would leave every port in TIME_WAIT for a minute on
      // this side, and binding to a 127.0.0.x address then has to search past them, which makes
      // the next run's connects crawl.
      for (const c of clients) {
        if (c.socket.destroyed) continue;
        if (c.socket.connecting) c.socket.destroy();
        else c.socket.resetAndDestroy();
      }
      process.disconnect();
    }
  });

  async function stop() {
    stopAt = performance.now();
    const cpu = process.cpuUsage(cpuAtMark);
    lag.disable();
    phase = 'stopping';
    const windowMs = stopAt - markAt;
    if (measuredOpen > 0) {
      await new Promise((resolve) => {
        drained = () => resolve(undefined);
        setTimeout(resolve, cfg.drainMs).unref();
      });
    }
    // Whatever is still unanswered now counts as an error, and as a latency of at least this long.
    const now = performance.now();
    for (const c of clients) {
      for (let i = c.head; i < c.times.length; i++) {
        const t = c.times[i];
        if (t >= markAt && t < stopAt) {
          hist.record(now - t);
          error('unanswered');
        }
      }
    }
    send({
      type: 'result',
      windowMs,
      windowReplies,
      sent,
      answered,
      lateTicks,
      hist: hist.toJSON(),
      errors,
      cpuMs: (cpu.user + cpu.system) / 1000,
      // The monitor samples every 10 ms and records whole intervals: the excess over 10 ms is lag.
      lagP99Ms: lag.count > 0 ? Math.max(0, lag.percentile(99) / 1e6 - 10) : 0,
      lagMaxMs: lag.count > 0 ? Math.max(0, lag.max / 1e6 - 10) : 0,
      rss: process.memoryUsage.rss(),
      alive: clients.filter((c) => c.alive).length,
    });
  }

  void connectAll();
}
