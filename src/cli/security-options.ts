import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { AUTH_DEFAULTS } from '../server/auth.js';
import type { SecurityOptions } from '../server/security.js';
import type { ParityServer } from '../server/server.js';
import { TLS_DEFAULTS } from '../server/tls.js';

const int = (describe: string, value: number) =>
  ({ type: 'number', default: value, describe }) as const;

/** The server's TLS, users and protected-mode flags, spread into the CLI's OPTIONS. */
export const SECURITY_OPTIONS = {
  'tls-cert': { type: 'string', describe: 'PEM certificate chain: serve TLS (needs --tls-key)' },
  'tls-key': { type: 'string', describe: 'PEM private key of --tls-cert' },
  'tls-ca': { type: 'string', describe: 'PEM CA: require client certificates signed by it' },
  'tls-handshake-timeout-ms': int(
    'drop peers that have not finished the TLS handshake by then',
    TLS_DEFAULTS.handshakeTimeoutMs,
  ),
  users: { type: 'string', describe: 'users file (parity-server passwd): AUTH before HELLO' },
  'auth-max-failures': int('failed AUTHs before a connection is closed', AUTH_DEFAULTS.maxFailures),
  'auth-delay-ms': int(
    'delay of a failed AUTH reply, doubling per recent failure',
    AUTH_DEFAULTS.delayMs,
  ),
  insecure: {
    type: 'boolean',
    default: false,
    describe: 'allow a non-loopback --host without --users or --tls-ca',
  },
} as const;

export type SecurityArgs = {
  host: string;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  'tls-ca'?: string | undefined;
  'tls-handshake-timeout-ms': number;
  users?: string | undefined;
  'auth-max-failures': number;
  'auth-delay-ms': number;
  insecure: boolean;
};

/** 127.0.0.0/8 (also IPv4-mapped), ::1 and the name localhost. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^::ffff:/, '');
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * Redis's protected mode: a Redis with no password that is asked to listen beyond loopback
 * answers every client with an error saying how to fix it (set a password, bind to loopback, or
 * turn protected mode off). Here the same rule applies at start, where it cannot be missed: on a
 * non-loopback --host, with neither --users nor required client certificates (--tls-ca), the
 * server refuses to start unless --insecure says exposure is meant.
 */
export function protectedModeProblem(args: SecurityArgs): string | null {
  if (args.insecure || isLoopback(args.host)) return null;
  if (args.users !== undefined || args['tls-ca'] !== undefined) return null;
  return (
    `protected mode: --host ${args.host} is not loopback and anyone who can connect could read and ` +
    'overwrite every id. Add --users FILE (see parity-server passwd) or --tls-cert/--tls-key with ' +
    '--tls-ca, listen on 127.0.0.1, or pass --insecure if this exposure is intended.'
  );
}

/** yargs `.check` for the flags above; throws the first problem. */
export function checkSecurity(args: SecurityArgs): true {
  const cert = args['tls-cert'] !== undefined;
  if (cert !== (args['tls-key'] !== undefined)) {
    throw new Error('--tls-cert and --tls-key go together');
  }
  if (args['tls-ca'] !== undefined && !cert)
    throw new Error('--tls-ca needs --tls-cert and --tls-key');
  for (const name of ['tls-handshake-timeout-ms', 'auth-max-failures', 'auth-delay-ms'] as const) {
    const value = args[name];
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`--${name} must be a positive integer, got ${value}`);
    }
  }
  const problem = protectedModeProblem(args);
  if (problem !== null) throw new Error(problem);
  return true;
}

/** The parsed flags as startServer's `security` option. */
export function securityOptions(args: SecurityArgs): SecurityOptions {
  const cert = args['tls-cert'];
  const key = args['tls-key'];
  const ca = args['tls-ca'];
  return {
    ...(cert !== undefined && key !== undefined
      ? { tls: { cert, key, ...(ca === undefined ? {} : { ca }) } }
      : {}),
    ...(args.users === undefined ? {} : { usersPath: args.users }),
    tlsHandshakeTimeoutMs: args['tls-handshake-timeout-ms'],
    auth: { maxFailures: args['auth-max-failures'], delayMs: args['auth-delay-ms'] },
  };
}

/** SIGHUP: reload the TLS material and the users file, and say how it went. */
export function reloadOnHangup(server: ParityServer, logger: Logger): void {
  server.reload().then(
    () => logger.info('reloaded TLS material and users file'),
    (err: unknown) => logger.error({ err }, 'reload failed'),
  );
}
