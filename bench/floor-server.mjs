#!/usr/bin/env node
/**
 * The floor: the least a server can do and still keep Parity's promises, to learn whether a
 * target is out of reach for any design rather than for Parity's. It is the bare baseline server
 * plus only what the promises need:
 *
 * - every line in both directions gets a JSON record in one append-only file, in Parity's record
 *   shape (level, time, conn, id, dir, line), built by hand and escaped with JSON.stringify;
 * - that file is also the value journal (each id's last value is the last `VALUE` record of its
 *   id, so nothing else is written): one write and one fdatasync per group commit, the design the
 *   issue names as its goal;
 * - a reply to `HELLO` or `VALUE` leaves only once the commit holding its request line is done;
 *   replies wait in order behind it, and their own records ride on the next commit.
 *
 * It keeps none of the rest: no rotation or reopen (so no second file), no checkpoint, no
 * limits, no takeover, no monitor, no errors but the baseline's, and it reads bytes as latin1 as
 * the baseline does (the generator sends ASCII). A target the floor misses on this machine is out
 * of reach of any server built like it, not only of Parity; BENCHMARKS.md, "The floor", says how
 * far that goes.
 *
 *   node bench/floor-server.mjs --log FILE [--port 0] [--host 127.0.0.1] [--commit async|blocking]
 *
 * --commit async (default): one commit in flight at a time, on libuv's thread pool (a write, then
 *   an fdatasync); requests read meanwhile ride on the next, as in Parity.
 * --commit blocking: Redis's appendfsync always: at the end of each event-loop turn, write and
 *   fdatasync on the main thread, then reply.
 *
 * Prints one JSON line `{"msg":"listening …","port":N}` when ready, and exits on SIGTERM/SIGINT,
 * writing the records still pending unless a commit is in flight. It does not read its file back
 * at start: every run begins with no values.
 */
import { fdatasync, fdatasyncSync, openSync, write, writeSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import { createServer } from 'node:net';
import process from 'node:process';
import { setImmediate } from 'node:timers';
import { parseArgs } from 'node:util';
import { serve } from './lib/serve.mjs';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    log: { type: 'string' },
    commit: { type: 'string', default: 'async' },
  },
});
if (values.log === undefined || !['async', 'blocking'].includes(values.commit)) {
  process.stderr.write('usage: floor-server.mjs --log FILE [--commit async|blocking]\n');
  process.exit(2);
}
const blocking = values.commit === 'blocking';
const fd = openSync(values.log, 'a', 0o600);

/**
 * `out`: replies not sent yet, in order. `queued`: in `waiting`, for the next commit. `held`: how
 * many of `out` the commit in flight answers (their request lines are in it).
 * @typedef {{ conn: number, id: string | null, bound: string, out: string[], queued: boolean, held: number, socket: import('node:net').Socket }} Peer
 */

/** Records not yet written, as one string; written and synced by the next commit. */
let pending = '';
/** @type {Peer[]} Peers whose replies wait for the next commit (their lines are in `pending`). */
let waiting = [];
let inFlight = false;
let scheduled = false;
/** @type {Map<string, number>} */
const stored = new Map();

/** @param {Peer} peer @param {'in' | 'out'} dir @param {string} line */
function record(peer, dir, line) {
  pending += `{"level":30,"time":${Date.now()}${peer.bound},"dir":"${dir}","line":${JSON.stringify(line)}}\n`;
}

/** Sends the first `n` replies of `peer.out`, in one write, and queues their records. */
function send(/** @type {Peer} */ peer, /** @type {number} */ n) {
  const lines = n === peer.out.length ? peer.out : peer.out.slice(0, n);
  peer.out = n === peer.out.length ? [] : peer.out.slice(n);
  if (peer.socket.destroyed) return; // as in Parity: a reply not sent gets no record
  for (const line of lines) record(peer, 'out', line);
  peer.socket.write(`${lines.join('\n')}\n`);
}

/** @param {Peer} peer */
function queue(peer) {
  if (peer.queued) return;
  peer.queued = true;
  waiting.push(peer);
}

/**
 * The replies a finished commit holds, peer by peer in the order they were read. Replies read
 * while it ran wait for the next one (their request lines are in it), even an EVEN behind them.
 */
function answer(/** @type {Peer[]} */ peers) {
  for (const peer of peers) {
    send(peer, peer.held);
    peer.held = 0;
    if (peer.out.length > 0) queue(peer);
  }
  if (waiting.length > 0) schedule();
}

function schedule() {
  if (scheduled || inFlight) return;
  scheduled = true;
  // The end of this turn: every request read in it shares the commit.
  setImmediate(commit);
}

function commit() {
  scheduled = false;
  if (pending === '') return;
  const bytes = Buffer.from(pending);
  const peers = waiting;
  pending = '';
  waiting = [];
  for (const peer of peers) {
    peer.queued = false;
    peer.held = peer.out.length;
  }
  // The order of a commit: the records (request lines, and the replies sent since the last
  // commit) are written and fdatasynced; only then do the waiting replies leave.
  if (blocking) {
    writeAll(bytes);
    fdatasyncSync(fd);
    answer(peers);
    return;
  }
  inFlight = true;
  writeAsync(bytes, 0, () =>
    fdatasync(fd, (err) => {
      if (err) throw err;
      inFlight = false;
      answer(peers);
    }),
  );
}

/** @param {Buffer} bytes */
function writeAll(bytes) {
  for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
}

/** @param {Buffer} bytes @param {number} at @param {() => void} done */
function writeAsync(bytes, at, done) {
  write(fd, bytes, at, bytes.length - at, null, (err, n) => {
    if (err) throw err;
    if (at + n < bytes.length) writeAsync(bytes, at + n, done);
    else done();
  });
}

/** @param {Peer} peer @param {string} line @returns {boolean} whether the reply must wait */
function handle(peer, line) {
  const space = line.indexOf(' ');
  const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
  const arg = space === -1 ? '' : line.slice(space + 1);
  switch (verb) {
    case 'VALUE':
      if (peer.id !== null) stored.set(peer.id, Number(arg));
      peer.out.push(`OK ${arg}`);
      return true;
    case 'HELLO':
      peer.id = arg;
      peer.bound = `,"conn":${peer.conn},"id":${JSON.stringify(arg)}`;
      peer.out.push(`VALUE ${stored.get(arg) ?? 0}`);
      return true;
    case 'EVEN':
      peer.out.push(`EVEN ${2 * Math.floor(Math.random() * 50)}`);
      return false;
    case 'ODD':
      peer.out.push(`ODD ${2 * Math.floor(Math.random() * 50) + 1}`);
      return false;
    case 'PING':
      peer.out.push('PONG');
      return false;
    default:
      peer.out.push('ERR UNKNOWN_COMMAND try HELP');
      return false;
  }
}

let connections = 0;
/** @type {Set<import('node:net').Socket>} */
const sockets = new Set();

const server = createServer({ allowHalfOpen: false }, (socket) => {
  socket.setNoDelay(true);
  socket.setEncoding('latin1');
  sockets.add(socket);
  const conn = ++connections;
  /** @type {Peer} */
  const peer = {
    conn,
    id: null,
    bound: `,"conn":${conn}`,
    out: [],
    queued: false,
    held: 0,
    socket,
  };
  let rest = '';
  socket.on('data', (/** @type {string} */ text) => {
    const data = rest === '' ? text : rest + text;
    let durable = false;
    let start = 0;
    for (let lf = data.indexOf('\n'); lf !== -1; lf = data.indexOf('\n', start)) {
      const line = data.slice(start, data.charCodeAt(lf - 1) === 13 ? lf - 1 : lf).trim();
      start = lf + 1;
      if (line === '') continue;
      record(peer, 'in', line);
      if (handle(peer, line)) durable = true;
    }
    rest = data.slice(start);
    if (peer.out.length === 0) return;
    if (durable || peer.held > 0 || peer.queued) {
      queue(peer);
      schedule();
    } else send(peer, peer.out.length);
  });
  socket.on('error', () => {});
  socket.on('close', () => sockets.delete(socket));
});

serve(server, values.host, Number(values.port), () => {
  // The records of the last replies wait for a commit that no request will start now.
  if (!inFlight) writeAll(Buffer.from(pending));
  for (const socket of sockets) socket.destroy();
});
