import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientSecurity } from '../src/cli/client-security-options.js';
import { parseServerArgs } from '../src/cli/server-options.js';
import {
  checkSecurity,
  isLoopback,
  protectedModeProblem,
  securityOptions,
  type SecurityArgs,
} from '../src/cli/security-options.js';
import { tempDir } from './fixtures/server.js';

const args = (over: Partial<SecurityArgs>): SecurityArgs => ({
  host: '127.0.0.1',
  'tls-handshake-timeout-ms': 10_000,
  'auth-max-failures': 3,
  'auth-delay-ms': 250,
  insecure: false,
  ...over,
});

t.test('loopback is 127.0.0.0/8, ::1 and localhost', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) {
    t.ok(isLoopback(h), h);
  }
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '127.example.com']) {
    t.notOk(isLoopback(h), h);
  }
});

t.test('protected mode: beyond loopback only with users, client certs or --insecure', async (t) => {
  t.equal(protectedModeProblem(args({})), null);
  t.match(protectedModeProblem(args({ host: '0.0.0.0' })), /protected mode.*--insecure/s);
  t.match(
    protectedModeProblem(args({ host: '::', 'tls-cert': 'c', 'tls-key': 'k' })),
    /protected mode/,
    'TLS alone authenticates nobody',
  );
  t.equal(protectedModeProblem(args({ host: '0.0.0.0', users: 'u' })), null);
  t.equal(protectedModeProblem(args({ host: '0.0.0.0', 'tls-ca': 'ca' })), null);
  t.equal(protectedModeProblem(args({ host: '0.0.0.0', insecure: true })), null);
});

t.test('the flags are checked together and mapped to server options', async (t) => {
  t.throws(() => checkSecurity(args({ 'tls-cert': 'c' })), /go together/);
  t.throws(() => checkSecurity(args({ 'tls-ca': 'ca' })), /needs --tls-cert/);
  // Ranges are the option table's: a bad number never reaches checkSecurity.
  t.match(await parseServerArgs(['--auth-delay-ms', '0'], {}), {
    kind: 'error',
    message: /invalid --auth-delay-ms 0: use an integer 1-/,
  });
  t.throws(() => checkSecurity(args({ host: '0.0.0.0' })), /protected mode/);
  t.equal(checkSecurity(args({})), true);
  t.same(securityOptions(args({ 'tls-cert': 'c', 'tls-key': 'k', users: 'u' })), {
    tls: { cert: 'c', key: 'k' },
    usersPath: 'u',
    tlsHandshakeTimeoutMs: 10_000,
    auth: { maxFailures: 3, delayMs: 250 },
  });
});

t.test('the client takes its password from a file or PARITY_PASSWORD, never a flag', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'pw');
  writeFileSync(file, 'fromfile\nsecond line\n');
  t.same(await clientSecurity({ tls: false }, {}), { tls: null, password: undefined });
  t.same(await clientSecurity({ tls: false }, { PARITY_PASSWORD: 'env' }), {
    tls: null,
    password: 'env',
  });
  const both = await clientSecurity(
    { tls: false, 'password-file': file },
    { PARITY_PASSWORD: 'e' },
  );
  t.equal(both.password, 'fromfile', 'the file wins');
  await t.rejects(clientSecurity({ tls: false }, { PARITY_PASSWORD: 'two words' }), /no spaces/);
  await t.rejects(clientSecurity({ tls: true, 'tls-cert': file }, {}), /go together/);
  t.same((await clientSecurity({ tls: true }, {})).tls, {}, '--tls alone: system CAs');
  const ca = await clientSecurity({ tls: false, 'tls-ca': file }, {});
  t.ok(Buffer.isBuffer(ca.tls?.ca), '--tls-ca implies TLS');
});
