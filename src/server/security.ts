import {
  createServer as createNetServer,
  type Server,
  type ServerOpts,
  type Socket,
} from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { Clock } from '../clock.js';
import { Authenticator, type AuthLimits } from './auth.js';
import { createTlsServer, loadTlsMaterial, TLS_DEFAULTS, type TlsPaths } from './tls.js';
import { loadUsers } from './users-file.js';

/** The server's security options; all off by default, which is the v1 plaintext protocol. */
export type SecurityOptions = {
  tls?: TlsPaths;
  tlsHandshakeTimeoutMs?: number;
  /** The users file; with it, AUTH is required before HELLO. */
  usersPath?: string;
  auth?: Partial<AuthLimits>;
  /** Clock of the AUTH slow-down (tests). */
  clock?: Clock;
};

export type Security = {
  /** Null without a users file: the handlers then behave as in v1. */
  readonly auth: Authenticator | null;
  readonly tls: boolean;
  /** A plaintext or TLS listener calling `onConnection` with each ready socket. */
  createServer(
    opts: ServerOpts,
    onConnection: (socket: Socket) => void,
    onRefused: (socket: Socket, reason: string) => void,
    /** With TLS: each TCP socket before its handshake; false if it refused (and closed) it. */
    admit: (raw: Socket) => boolean,
  ): Server;
  /**
   * Reloads the TLS material and the users file (SIGHUP); each one that fails keeps the old.
   * Resolves with what was reloaded: nothing when the server has neither.
   */
  reload(): Promise<string[]>;
};

/** Loads the TLS files and the users file, failing before the server listens if either is bad. */
export async function openSecurity(options: SecurityOptions = {}): Promise<Security> {
  const { tls, usersPath } = options;
  let material = tls === undefined ? null : await loadTlsMaterial(tls);
  const authOptions = {
    limits: options.auth ?? {},
    ...(options.clock ? { clock: options.clock } : {}),
  };
  const auth =
    usersPath === undefined ? null : new Authenticator(await loadUsers(usersPath), authOptions);
  let server: TlsServer | null = null;
  return {
    auth,
    tls: material !== null,
    createServer(opts, onConnection, onRefused, admit) {
      if (material === null) return createNetServer(opts, onConnection);
      const handshakeTimeoutMs = options.tlsHandshakeTimeoutMs ?? TLS_DEFAULTS.handshakeTimeoutMs;
      const tlsOptions = { ...opts, handshakeTimeoutMs };
      server = createTlsServer(material, tlsOptions, onConnection, onRefused, admit);
      return server;
    },
    async reload() {
      const failures: string[] = [];
      const reloaded: string[] = [];
      if (tls !== undefined) {
        try {
          material = await loadTlsMaterial(tls);
          server?.setSecureContext(material);
          reloaded.push('TLS material');
        } catch (err) {
          failures.push(`TLS: ${(err as Error).message}`);
        }
      }
      if (usersPath !== undefined && auth !== null) {
        try {
          auth.setUsers(await loadUsers(usersPath));
          reloaded.push('users file');
        } catch (err) {
          failures.push(`users: ${(err as Error).message}`);
        }
      }
      if (failures.length > 0) throw new Error(`reload kept the old ${failures.join('; ')}`);
      return reloaded;
    },
  };
}
