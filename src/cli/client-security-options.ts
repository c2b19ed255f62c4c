import { promises as fsp } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { isValidPassword } from '../protocol/syntax.js';
import { bool, optionalStr } from './options.js';

/** The client's TLS and password flags, spread into its options. No flag takes the password itself. */
export const CLIENT_SECURITY_OPTIONS = {
  tls: bool('Connect over TLS'),
  'tls-ca': optionalStr(
    'PEM CA to verify the server with (implies --tls; default: the system CAs)',
  ),
  'tls-cert': optionalStr('PEM client certificate, for a server that requires one'),
  'tls-key': optionalStr('PEM key of --tls-cert'),
  'password-file': optionalStr(
    'File whose first line is the password for AUTH (or set PARITY_PASSWORD)',
  ),
} as const;

export type ClientSecurityArgs = {
  tls: boolean;
  'tls-ca'?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  'password-file'?: string | undefined;
};

export type ClientSecurity = { tls: ConnectionOptions | null; password: string | undefined };

const firstLine = (text: string) => text.split(/\r?\n/)[0] ?? '';

/**
 * Reads the files the flags name. The password comes from --password-file, else PARITY_PASSWORD:
 * never from a flag, which any user could read in `ps`.
 */
export async function clientSecurity(
  args: ClientSecurityArgs,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClientSecurity> {
  const file = args['password-file'];
  const password =
    file !== undefined ? firstLine(await fsp.readFile(file, 'utf8')) : env['PARITY_PASSWORD'];
  if (password !== undefined && !isValidPassword(password)) {
    throw new Error('the password must be 1-256 of ! to ~ (no spaces)');
  }
  const cert = args['tls-cert'];
  const key = args['tls-key'];
  if ((cert === undefined) !== (key === undefined)) {
    throw new Error('--tls-cert and --tls-key go together');
  }
  const ca = args['tls-ca'];
  if (!args.tls && ca === undefined && cert === undefined) return { tls: null, password };
  const read = (path: string | undefined) => (path === undefined ? undefined : fsp.readFile(path));
  const [caPem, certPem, keyPem] = await Promise.all([read(ca), read(cert), read(key)]);
  return {
    tls: {
      ...(caPem ? { ca: caPem } : {}),
      ...(certPem && keyPem ? { cert: certPem, key: keyPem } : {}),
    },
    password,
  };
}
