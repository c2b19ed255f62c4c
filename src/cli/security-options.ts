import { isIP } from 'node:net';
import { AUTH_DEFAULTS } from '../server/auth.js';
import type { SecurityOptions } from '../server/security.js';
import { TLS_DEFAULTS } from '../server/tls.js';

import { bool, int, ms, optionalStr } from './options.js';

/** The server's TLS, users and protected-mode flags, spread into the CLI's option table. */
export const SECURITY_OPTIONS = {
  'tls-cert': optionalStr('PEM certificate chain: serve TLS (needs --tls-key)'),
  'tls-key': optionalStr('PEM private key of --tls-cert'),
  'tls-ca': optionalStr('PEM CA: require client certificates signed by it'),
  'tls-handshake-timeout-ms': ms(
    'drop peers that have not finished the TLS handshake by then',
    TLS_DEFAULTS.handshakeTimeoutMs,
  ),
  users: optionalStr('users file (parity-server passwd): AUTH before HELLO'),
  'auth-max-failures': int('failed AUTHs before a connection is closed', AUTH_DEFAULTS.maxFailures),
  'auth-delay-ms': ms(
    'delay of a failed AUTH reply, doubling per recent failure',
    AUTH_DEFAULTS.delayMs,
  ),
  insecure: bool('allow a non-loopback --host without --users or --tls-ca'),
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
    `protected mode: the host ${args.host} (--host or PARITY_HOST) is not loopback and anyone who ` +
    'can connect could read and ' +
    'overwrite every id. Add --users FILE (see parity-server passwd) or --tls-cert/--tls-key with ' +
    '--tls-ca, listen on 127.0.0.1, or pass --insecure if this exposure is intended.'
  );
}

/** What the option table cannot check alone: pairs of flags, and protected mode. */
export function checkSecurity(args: SecurityArgs): true {
  const cert = args['tls-cert'] !== undefined;
  if (cert !== (args['tls-key'] !== undefined)) {
    throw new Error('--tls-cert and --tls-key go together');
  }
  if (args['tls-ca'] !== undefined && !cert)
    throw new Error('--tls-ca needs --tls-cert and --tls-key');
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
