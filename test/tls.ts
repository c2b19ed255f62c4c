import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { hashPassword, setUser } from '../src/server/users-file.js';
import { makeCerts } from './fixtures/certs.js';
import { pathArgs, runToExit } from './fixtures/child.js';
import {
  readLog,
  ROOT,
  SERVER_BIN,
  spawnServer,
  tempDir,
  type TestLike,
} from './fixtures/server.js';

// Every test spawns bin/server (and some bin/client and openssl): seconds each on a busy machine.
t.setTimeout(180_000);

const certs = makeCerts(t);

/** Runs a bin with `input` on stdin; resolves with its exit code and output. */
function run(t: TestLike, cmd: string, args: string[], input: string, env = process.env) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += String(d)));
  child.stderr.on('data', (d: Buffer) => (err += String(d)));
  child.stdin.on('error', () => {}); // a peer that failed the handshake may not read it all
  child.stdin.end(input);
  return once(child, 'exit').then(([code]) => ({
    code: code as number | null,
    lines: out.split('\n').filter((l) => l !== ''),
    stderr: err,
  }));
}

/**
 * The real `openssl s_client`, verifying the server against our CA. `-quiet` also ignores the end
 * of stdin, so it keeps the session until the server closes it (QUIT, BYE, or a failed handshake).
 */
const sClient = (t: TestLike, port: number, input: string, extra: string[] = []) =>
  run(
    t,
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-quiet',
      '-verify_return_error',
      '-CAfile',
      certs.caCert,
      ...extra,
    ],
    input,
  );

/** A users file with alice (s3cret): by the real `parity-server passwd` when `viaBin`. */
async function usersFile(t: TestLike, dir: string, viaBin = false): Promise<string> {
  const path = join(dir, 'users');
  if (!viaBin) {
    await setUser(path, 'alice', await hashPassword('s3cret', { N: 1024, r: 8, p: 1 }));
    return path;
  }
  const r = await run(t, process.execPath, [SERVER_BIN, 'passwd', path, 'alice'], 's3cret\n');
  if (r.code !== 0) throw new Error(`passwd failed: ${r.stderr}`);
  return path;
}

const tlsArgs = (extra: string[] = []) => [
  '--tls-cert',
  certs.serverCert,
  '--tls-key',
  certs.serverKey,
  ...extra,
];

t.test('a TLS session with AUTH through openssl s_client; the log has no password', async (t) => {
  const dir = tempDir(t);
  const users = await usersFile(t, dir, true);
  const s = await spawnServer(t, {
    dir,
    args: tlsArgs(['--users', users, '--auth-delay-ms', '1']),
  });
  const session = await sClient(
    t,
    s.port,
    'HELLO alice\nAUTH alice Wr0ng\nAUTH alice s3cret\nHELLO bob\nHELLO alice\nVALUE 5\nQUIT\n',
  );
  t.same(session.lines, [
    'ERR AUTH_REQUIRED say AUTH <id> <password> first',
    'ERR AUTH_FAILED wrong id or password',
    'AUTHED alice',
    'ERR FORBIDDEN this connection is authenticated as alice',
    'VALUE 0',
    'OK 5',
    'BYE',
  ]);
  t.equal(await s.stop(), 0);
  const log = await readLog(s.logPath);
  const auth = log.filter((r) => r.dir === 'in' && String(r.line).startsWith('AUTH'));
  t.same(
    auth.map((r) => r.line),
    ['AUTH alice', 'AUTH alice'],
  );
  t.notMatch(JSON.stringify(log), /s3cret|Wr0ng/);
});

t.test('brute force over TLS: the third failure is followed by BYE AUTH_FAILED', async (t) => {
  const dir = tempDir(t);
  const users = await usersFile(t, dir);
  const s = await spawnServer(t, {
    dir,
    args: tlsArgs(['--users', users, '--auth-delay-ms', '1']),
  });
  const r = await sClient(
    t,
    s.port,
    'AUTH alice a\nAUTH alice b\nAUTH alice c\nAUTH alice s3cret\n',
  );
  t.match(r.lines, [
    /^ERR AUTH_FAILED /,
    /^ERR AUTH_FAILED /,
    /^ERR AUTH_FAILED /,
    /^ERR AUTH_FAILED /,
    /^BYE AUTH_FAILED /,
  ]);
  t.equal(r.lines.length, 5, 'the right password after the third failure was not accepted');
});

t.test('a plaintext peer on the TLS port is closed and logged as refused', async (t) => {
  const s = await spawnServer(t, { args: tlsArgs() });
  const socket = connect({ host: '127.0.0.1', port: s.port });
  t.teardown(() => socket.destroy());
  socket.on('error', () => {});
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.write('HELLO alice\n');
  await once(socket, 'close');
  t.notMatch(received, /VALUE|ERR|BYE/, 'no protocol reply in plaintext');
  t.equal(await s.stop(), 0);
  const refused = (await readLog(s.logPath)).filter((r) => r.event === 'refused');
  t.equal(refused.length, 1);
  t.match(refused[0], { reason: /^tls handshake failed: ERR_SSL_/, remote: /^127\.0\.0\.1:/ });
});

t.test('a peer that never starts the handshake is dropped at the handshake timeout', async (t) => {
  const s = await spawnServer(t, { args: tlsArgs(['--tls-handshake-timeout-ms', '300']) });
  const socket = connect({ host: '127.0.0.1', port: s.port });
  t.teardown(() => socket.destroy());
  socket.on('error', () => {});
  socket.resume();
  await once(socket, 'close'); // the server closes it: the test sends nothing
  t.equal(await s.stop(), 0);
  const refused = (await readLog(s.logPath)).filter((r) => r.event === 'refused');
  t.match(refused, [{ reason: 'tls handshake failed: ERR_TLS_HANDSHAKE_TIMEOUT' }]);
});

t.test('with --tls-ca a client certificate is required', async (t) => {
  const s = await spawnServer(t, { args: tlsArgs(['--tls-ca', certs.caCert]) });
  const without = await sClient(t, s.port, 'PING\nQUIT\n');
  t.same(without.lines, [], 'no replies without a certificate');
  t.not(without.code, 0);
  const withCert = await sClient(t, s.port, 'PING\nQUIT\n', [
    '-cert',
    certs.clientCert,
    '-key',
    certs.clientKey,
  ]);
  t.same(withCert.lines, ['PONG', 'BYE']);
  t.equal(await s.stop(), 0);
  const refused = (await readLog(s.logPath)).filter((r) => r.event === 'refused');
  t.equal(refused.length, 1, 'the peer without a certificate');
  t.match(refused[0]?.reason, /^tls handshake failed: /);
});

type Rec = Record<string, unknown>;

/** The real bin/client, JSON lines on stdout, PARITY_* from the caller left out. */
function client(t: TestLike, args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('PARITY')),
  );
  const child = spawn(process.execPath, [join(ROOT, 'bin/client'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...clean, ...env },
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const records: Rec[] = [];
  let wake = () => {};
  createInterface({ input: child.stdout }).on('line', (l) => {
    records.push(JSON.parse(l) as Rec);
    wake();
  });
  const until = async (match: (r: Rec) => boolean) => {
    while (!records.some(match)) await new Promise<void>((r) => (wake = r));
  };
  return { child, records, exited, until };
}

t.test('bin/client --tls with a password file: AUTH, then the counter runs', async (t) => {
  const dir = tempDir(t);
  const users = await usersFile(t, dir);
  const s = await spawnServer(t, {
    dir,
    args: tlsArgs(['--users', users, '--auth-delay-ms', '1']),
  });
  const pwFile = join(dir, 'password');
  writeFileSync(pwFile, 's3cret\n', { mode: 0o600 });
  const base = ['--id', 'alice', '--port', String(s.port), '--tls-ca', certs.caCert];
  const c = client(t, [...base, '--tick-ms', '20', '--password-file', pwFile]);
  await c.until((r) => r.event === 'sent' && /^VALUE 3$/.test(String(r.line)));
  c.child.kill('SIGINT');
  t.equal(await c.exited, 0);
  const sent = c.records.filter((r) => r.event === 'sent').map((r) => r.line);
  t.same(sent.slice(0, 2), ['AUTH alice', 'HELLO alice'], 'the output shows no password');
  t.notMatch(JSON.stringify(c.records), /s3cret/);
  t.match(
    c.records.filter((r) => r.event === 'received').map((r) => r.line),
    ['AUTHED alice', 'VALUE 0', 'OK 1'],
  );

  const wrong = client(t, base, { PARITY_PASSWORD: 'nope' });
  t.equal(await wrong.exited, 1, 'a wrong password is fatal, not retried');
  t.match(wrong.records.at(-1), { event: 'stopped', reason: /AUTH_FAILED/ });

  const none = client(t, base);
  t.equal(await none.exited, 1, 'no password for a server that needs one');
  t.match(none.records.at(-1), { event: 'stopped', reason: /AUTH_REQUIRED/ });
});

t.test('bin/client refuses a server its CA did not sign', async (t) => {
  const s = await spawnServer(t, { args: tlsArgs() });
  const c = client(t, ['--id', 'a', '--port', String(s.port), '--tls-ca', certs.otherCa]);
  await c.until((r) => r.event === 'disconnected');
  t.match(
    c.records.find((r) => r.event === 'disconnected'),
    { reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
  );
  t.notOk(
    c.records.some((r) => r.event === 'sent'),
    'nothing was sent',
  );
});

t.test('SIGHUP reloads the users file and the certificate', async (t) => {
  const dir = tempDir(t);
  const users = await usersFile(t, dir);
  const cert = join(dir, 'server.pem');
  const key = join(dir, 'server.key');
  copyFileSync(certs.serverCert, cert);
  copyFileSync(certs.serverKey, key);
  const s = await spawnServer(t, {
    dir,
    args: ['--tls-cert', cert, '--tls-key', key, '--users', users, '--auth-delay-ms', '1'],
  });
  const r = await run(t, process.execPath, [SERVER_BIN, 'passwd', users, 'bob'], 'b0b\n');
  t.equal(r.code, 0);
  copyFileSync(certs.otherServerCert, cert);
  copyFileSync(certs.otherServerKey, key);
  s.child.kill('SIGHUP');
  await s.waitForOutput('reloaded TLS material and users file');
  const session = await sClient(t, s.port, 'AUTH bob b0b\nQUIT\n', ['-CAfile', certs.otherCa]);
  t.same(session.lines, ['AUTHED bob', 'BYE'], 'new users and certificate');
  const old = await sClient(t, s.port, 'PING\n');
  t.same(old.lines, [], 'the old CA no longer verifies the server');
});

t.test('protected mode: no non-loopback --host without --users or --tls-ca', async (t) => {
  const dir = tempDir(t);
  const files = pathArgs(join(dir, 'state.json'), join(dir, 'messages.log'));
  const refused = await runToExit([...files, '--host', '0.0.0.0']);
  t.equal(refused.code, 2);
  t.notOk(refused.listened);
  t.match(
    refused.stderr,
    /protected mode: the host 0\.0\.0\.0 \(--host or PARITY_HOST\) is not loopback/,
  );
  t.match(refused.stderr, /--users FILE .*--insecure/s, 'says how to fix it');
  const tlsOnly = await runToExit([...files, '--host', '0.0.0.0', ...tlsArgs()]);
  t.equal(tlsOnly.code, 2, 'TLS without client certificates authenticates nobody');
  const users = await usersFile(t, dir);
  for (const extra of [['--insecure'], ['--users', users], tlsArgs(['--tls-ca', certs.caCert])]) {
    const ok = await runToExit([...files, '--host', '0.0.0.0', ...extra]);
    t.ok(ok.listened, extra.join(' '));
  }
  t.ok((await runToExit([...files, '--host', 'localhost'])).listened, 'loopback needs nothing');
});

t.test('peers still in the TLS handshake count toward the client limits', async (t) => {
  const s = await spawnServer(t, {
    args: tlsArgs([
      ...['--max-clients', '5', '--max-clients-per-address', '3'],
      ...['--tls-handshake-timeout-ms', '1500'],
    ]),
  });
  /** A TCP peer that never starts the handshake. */
  const silent = async (localAddress: string) => {
    const socket = connect({ host: '127.0.0.1', port: s.port, localAddress });
    t.teardown(() => socket.destroy());
    socket.on('error', () => {});
    socket.resume();
    await once(socket, 'connect');
    return { socket, closed: once(socket, 'close').then(() => Date.now()) };
  };
  const held = [];
  for (let i = 0; i < 3; i++) held.push(await silent('127.0.0.1'));
  const fourth = await silent('127.0.0.1'); // a fourth from one address
  for (let i = 0; i < 2; i++) held.push(await silent('127.0.0.2'));
  const sixth = await silent('127.0.0.3'); // a sixth in all
  const refusedAt = Math.max(await fourth.closed, await sixth.closed);
  // The five within the limits wait until the server drops them at the handshake timeout.
  const droppedAt = Math.min(...(await Promise.all(held.map((h) => h.closed))));
  t.ok(droppedAt > refusedAt, 'the two past the limits were closed before any of the five');

  // Once they are gone, a real client is served.
  const r = await sClient(t, s.port, 'PING\nQUIT\n');
  t.same(r.lines, ['PONG', 'BYE']);
  t.equal(await s.stop(), 0);
  const refused = (await readLog(s.logPath)).filter((r) => r.event === 'refused');
  t.match(refused, [
    { reason: 'SERVER_BUSY', limit: 'max-clients-per-address', remote: /^127\.0\.0\.1:/ },
    { reason: 'SERVER_BUSY', limit: 'max-clients', remote: /^127\.0\.0\.3:/ },
    ...held.map(() => ({ reason: 'tls handshake failed: ERR_TLS_HANDSHAKE_TIMEOUT' })),
  ]);
  t.equal(refused.length, 7, 'and nothing else was refused');
});
