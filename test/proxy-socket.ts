import t from 'tap';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket } from 'node:tls';
import type { ProxyHeader } from '../src/net/proxy-protocol.js';
import { readProxyHeader } from '../src/net/proxy-socket.js';
import { makeCerts } from './fixtures/certs.js';
import { FakeClock } from './fixtures/fake-clock.js';
import { proxyV1, proxyV2Tcp4, V2_SIGNATURE } from './fixtures/proxy-header.js';
import type { TestLike } from './fixtures/server.js';

const CLIENT = { address: '192.168.0.1', port: 56324 };
const BALANCER = { address: '10.0.0.2', port: 7070 };
const V2_TCP4 = proxyV2Tcp4(CLIENT, BALANCER);
const ascii = (s: string) => Buffer.from(s, 'latin1');
// Looks like a header (a v2 signature, CRLF, NUL) to make sure the rest is passed on untouched.
const AFTER = Buffer.concat([ascii('PING\r\nHELLO alice\n'), V2_SIGNATURE, Buffer.from([0, 0xff])]);

type Pair = { client: Socket; server: Socket };

/** A connected pair on 127.0.0.1 port 0; both ends and the listener are closed in teardown. */
async function socketPair(t: TestLike): Promise<Pair> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as { port: number };
  const accepted = once(listener, 'connection');
  const client = connect(port, '127.0.0.1');
  const [[server]] = (await Promise.all([accepted, once(client, 'connect')])) as [
    [Socket],
    unknown,
  ];
  t.teardown(() => {
    client.destroy();
    server.destroy();
    listener.close();
  });
  return { client, server };
}

const LISTENED = ['readable', 'end', 'close', 'error', 'data'] as const;
const listenerCounts = (socket: Socket) => LISTENED.map((e) => socket.listenerCount(e));

/** Resolves once `socket` holds at least `bytes` unread bytes (it reads nothing itself). */
function buffered(socket: Socket, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    socket.on('readable', function wait() {
      if (socket.readableLength < bytes) return;
      socket.off('readable', wait);
      resolve();
    });
  });
}

/** Everything the socket delivers from now until the peer ends. */
async function readToEnd(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  return Buffer.concat(chunks);
}

t.test('readProxyHeader: a header split across writes, then the stream as sent', async (t) => {
  const { client, server } = await socketPair(t);
  const before = listenerCounts(server);
  const clock = new FakeClock();
  const header = readProxyHeader(server, { timeoutMs: 5_000, clock });
  client.write(V2_TCP4.subarray(0, 7));
  await once(server, 'readable'); // readProxyHeader's own listener has taken the first part
  client.write(V2_TCP4.subarray(7));
  t.same(await header, {
    kind: 'proxy',
    version: 2,
    family: 'IPv4',
    source: CLIENT,
    destination: BALANCER,
  });
  t.same(listenerCounts(server), before, 'no listener left behind');
  t.equal(clock.pending, 0, 'no timer left behind');
  client.end('PING\r\n');
  t.same(await readToEnd(server), ascii('PING\r\n'));
});

t.test('readProxyHeader: data in the same packet as the header is put back', async (t) => {
  const { client, server } = await socketPair(t);
  const v1 = proxyV1({ address: '203.0.113.7', port: 40000 }, BALANCER);
  client.end(Buffer.concat([v1, AFTER]));
  // Called once the whole packet is buffered (so it is one chunk), in the tick that removes the
  // waiting listener: no new 'readable' event comes, and readProxyHeader must read it all the same.
  const header = new Promise<ProxyHeader>((resolve, reject) => {
    server.on('readable', function wait() {
      if (server.readableLength < v1.length + AFTER.length) return;
      server.off('readable', wait);
      readProxyHeader(server, { timeoutMs: 5_000 }).then(resolve, reject);
    });
  });
  const got = await header;
  t.match(got, { kind: 'proxy', source: { address: '203.0.113.7', port: 40000 } });
  t.same(await readToEnd(server), AFTER, 'the protocol code sees exactly what followed');
});

t.test('readProxyHeader: a TLS handshake right behind the header still works', async (t) => {
  const certs = makeCerts(t);
  const { client, server } = await socketPair(t);
  const context = createSecureContext({
    cert: readFileSync(certs.serverCert),
    key: readFileSync(certs.serverKey),
  });
  client.write(V2_TCP4);
  const secure = tlsConnect({
    socket: client,
    ca: readFileSync(certs.caCert),
    servername: 'localhost',
  });
  secure.on('error', () => {});
  await buffered(server, V2_TCP4.length + 1); // the ClientHello is queued behind the header
  const header = await readProxyHeader(server, { timeoutMs: 5_000 });
  t.equal(header.kind, 'proxy');
  const tls = new TLSSocket(server, { isServer: true, secureContext: context });
  await once(secure, 'secureConnect');
  secure.end('HELLO alice\n');
  t.same(await readToEnd(tls), ascii('HELLO alice\n'));
  tls.destroy();
});

t.test('readProxyHeader: a plaintext peer is refused at once, without the timeout', async (t) => {
  const { client, server } = await socketPair(t);
  const before = listenerCounts(server);
  const clock = new FakeClock();
  const header = readProxyHeader(server, { timeoutMs: 5_000, clock });
  client.write('HELLO alice\n');
  await t.rejects(header, { code: 'NO_HEADER', message: 'no PROXY protocol header' });
  t.same(listenerCounts(server), before);
  t.equal(clock.pending, 0);
});

t.test('readProxyHeader: a silent peer times out', async (t) => {
  const { client, server } = await socketPair(t);
  const before = listenerCounts(server);
  const clock = new FakeClock();
  const header = readProxyHeader(server, { timeoutMs: 5_000, clock });
  client.write(V2_TCP4.subarray(0, 10));
  await once(server, 'readable');
  clock.advance(4_999);
  clock.advance(1);
  await t.rejects(header, { code: 'TIMEOUT', message: 'no PROXY protocol header within 5000 ms' });
  t.same(listenerCounts(server), before);
  t.notOk(server.destroyed, 'the caller closes the socket');
});

t.test('readProxyHeader: the peer closing before the header ends', async (t) => {
  const { client, server } = await socketPair(t);
  client.end();
  await t.rejects(readProxyHeader(server, { timeoutMs: 5_000 }), {
    code: 'CLOSED',
    message: 'connection closed before the PROXY protocol header',
  });
  const pair = await socketPair(t);
  const before = listenerCounts(pair.server);
  pair.client.end('PROXY TCP4');
  await t.rejects(readProxyHeader(pair.server, { timeoutMs: 5_000 }), {
    code: 'CLOSED',
    message: 'connection closed inside the PROXY protocol header (10 bytes)',
  });
  t.same(listenerCounts(pair.server), before);
});

t.test('readProxyHeader: a socket error rejects with that error', async (t) => {
  const { server } = await socketPair(t);
  const header = readProxyHeader(server, { timeoutMs: 5_000 });
  server.destroy(new Error('boom'));
  await t.rejects(header, { message: 'boom' });
  t.equal(server.listenerCount('error'), 0);
});

t.test('readProxyHeader: a socket already closed is refused at once', async (t) => {
  const { server } = await socketPair(t);
  server.destroy();
  const clock = new FakeClock();
  await t.rejects(readProxyHeader(server, { timeoutMs: 5_000, clock }), { code: 'CLOSED' });
  t.equal(clock.pending, 0);
});
