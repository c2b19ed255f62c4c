#!/usr/bin/env node
/**
 * The ceiling: a bare node:net line server that answers Parity's requests with no log, no state
 * and no durability. `HELLO id` → `VALUE 0`, `VALUE n` → `OK n`, `EVEN`/`ODD` → a random one,
 * `PING` → `PONG`, `QUIT` → `BYE`, anything else → `ERR UNKNOWN_COMMAND`. Replies to one chunk
 * leave in one write, as Parity's do, and Nagle is off, as in Parity.
 *
 *   node bench/baseline-server.mjs [--port 0] [--host 127.0.0.1]
 *
 * Prints one JSON line `{"msg":"listening …","port":N}` when ready (the same shape as
 * bin/server's), and exits on SIGTERM/SIGINT.
 */
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { serve } from './lib/serve.mjs';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
  },
});

/** @param {string} line */
function reply(line) {
  const space = line.indexOf(' ');
  const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
  switch (verb) {
    case 'VALUE':
      return `OK ${line.slice(space + 1)}\n`;
    case 'HELLO':
      return 'VALUE 0\n';
    case 'EVEN':
      return `EVEN ${2 * Math.floor(Math.random() * 50)}\n`;
    case 'ODD':
      return `ODD ${2 * Math.floor(Math.random() * 50) + 1}\n`;
    case 'PING':
      return 'PONG\n';
    case '':
      return '';
    default:
      return 'ERR UNKNOWN_COMMAND try HELP\n';
  }
}

const server = createServer({ allowHalfOpen: false }, (socket) => {
  socket.setNoDelay(true);
  socket.setEncoding('latin1');
  let rest = '';
  socket.on('data', (/** @type {string} */ text) => {
    const data = rest === '' ? text : rest + text;
    let out = '';
    let start = 0;
    for (let lf = data.indexOf('\n'); lf !== -1; lf = data.indexOf('\n', start)) {
      const line = data.slice(start, data.charCodeAt(lf - 1) === 13 ? lf - 1 : lf).trim();
      start = lf + 1;
      if (line.toUpperCase() === 'QUIT') {
        socket.end(`${out}BYE\n`);
        return;
      }
      out += reply(line);
    }
    rest = data.slice(start);
    if (out !== '') socket.write(out);
  });
  socket.on('error', () => {});
});

/** @type {Set<import('node:net').Socket>} */
const sockets = new Set();
server.on('connection', (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
});
// Like Parity's graceful stop, minus the flush: every open connection is ended.
serve(server, values.host, Number(values.port), () => {
  for (const socket of sockets) socket.end('BYE SHUTTING_DOWN the server is stopping\n');
});
