import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import t from 'tap';
import type { ConnectionEvents } from '../src/client/connection.js';
import { tcpConnector } from '../src/client/socket.js';
import { unusedPort, type TestLike } from './fixtures/server.js';

/** A server on 127.0.0.1 port 0 that runs `onSocket` for each connection; closed in teardown. */
async function serve(t: TestLike, onSocket: (s: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    onSocket(s);
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

/** Connects and records the events; `closed` resolves with the close reason. */
function open(port: number, maxReplyBytes = 64, connectTimeoutMs = 5000) {
  const lines: string[] = [];
  let opened = false;
  let onClose: (reason: string) => void = () => {};
  const closed = new Promise<string>((res) => (onClose = res));
  const events: ConnectionEvents = {
    onOpen: () => (opened = true),
    onLine: (line) => lines.push(line),
    onClose: (reason) => onClose(reason),
  };
  const conn = tcpConnector({ host: '127.0.0.1', port, maxReplyBytes, connectTimeoutMs })(events);
  return { conn, lines, closed, opened: () => opened };
}

t.test('frames lines both ways; a last unterminated line before the close counts', async (t) => {
  let received = '';
  const port = await serve(t, (s) => {
    s.on('data', (d) => {
      received += d.toString();
      if (received.includes('QUIT\n')) s.end('VALUE 5\r\nOK 6\nOK');
    });
    s.write('PO');
    setImmediate(() => s.write('NG\n'));
  });
  const c = open(port);
  c.conn.send('HELLO alice');
  c.conn.send('QUIT');
  t.equal(await c.closed, 'connection closed by the server');
  t.ok(c.opened());
  t.equal(received, 'HELLO alice\nQUIT\n', 'each line sent with an LF');
  t.same(c.lines, ['PONG', 'VALUE 5', 'OK 6', 'OK'], 'CRLF is accepted, split chunks are joined');
});

t.test(
  'a reply over the cap drops the connection, and nothing after it is delivered',
  async (t) => {
    const port = await serve(t, (s) => s.write(`PONG\n${'x'.repeat(100)}\nPONG\n`));
    const c = open(port, 64);
    t.equal(await c.closed, 'reply longer than 64 bytes');
    t.same(c.lines, ['PONG']);
  },
);

t.test('a refused connection reports its error code', async (t) => {
  const unused = await unusedPort();
  const c = open(unused);
  t.equal(await c.closed, 'ECONNREFUSED');
  t.notOk(c.opened());
  c.conn.send('VALUE 1'); // after the close: a no-op, not a throw
});

t.test('lines stop once the client closes in reaction to one', async (t) => {
  const port = await serve(t, (s) => s.write('BYE TAKEN_OVER x\nPONG\nPONG\n'));
  const lines: string[] = [];
  let closed: (r: string) => void = () => {};
  const done = new Promise<string>((res) => (closed = res));
  const conn = tcpConnector({ host: '127.0.0.1', port, maxReplyBytes: 64, connectTimeoutMs: 5000 })(
    {
      onOpen: () => {},
      onLine: (line) => {
        lines.push(line);
        conn.close();
      },
      onClose: (reason) => closed(reason),
    },
  );
  await done;
  t.same(lines, ['BYE TAKEN_OVER x']);
});

/**
 * A port whose connects hang: a python3 listener (backlog 0) that never accepts, its one queue
 * slot taken, so Linux drops further SYNs and the connect waits. Node cannot stop accepting.
 */
async function hangingPort(t: TestLike): Promise<number> {
  const listener = spawn('python3', [
    '-c',
    [
      'import socket, sys, time',
      's = socket.socket()',
      "s.bind(('127.0.0.1', 0))",
      's.listen(0)',
      'print(s.getsockname()[1], flush=True)',
      'sys.stdin.read()', // until the test ends
    ].join('\n'),
  ]);
  t.teardown(() => listener.kill('SIGKILL'));
  const [line] = (await once(createInterface({ input: listener.stdout }), 'line')) as [string];
  const port = Number(line);
  const filler = netConnect({ host: '127.0.0.1', port });
  await once(filler, 'connect');
  t.teardown(() => filler.destroy());
  return port;
}

t.test('a connect that never completes is abandoned after connectTimeoutMs', async (t) => {
  const c = open(await hangingPort(t), 64, 300);
  t.equal(await c.closed, 'no connection within 300 ms');
  t.notOk(c.opened(), 'never opened');
});
