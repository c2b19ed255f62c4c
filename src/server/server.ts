import type { Server, Socket } from 'node:net';
import { once } from 'node:events';
import { pino, type Logger } from 'pino';
import { realClock, type Random } from '../clock.js';
import { SERVER_DEFAULTS, type ServerLimits } from '../limits.js';
import { LogFile, type LogFileOptions } from '../log/log-file.js';
import { MessageLog } from '../log/message-log.js';
import { formatReply } from '../protocol/replies.js';
import { lockStateFile } from '../store/state-lock.js';
import { Store, type StoreOptions } from '../store/store.js';
import { Connection, LINGER_MS } from './connection.js';
import { openSecurity, type SecurityOptions } from './security.js';

export type ServerOptions = {
  host?: string;
  port?: number;
  statePath: string;
  logPath: string;
  limits?: Partial<ServerLimits>;
  logFlushMs?: number;
  /** Message log memory cap, rotation size (0: off) and rotated files kept; see SERVER_DEFAULTS. */
  logBufferBytes?: number;
  logMaxBytes?: number;
  logKeep?: number;
  /** Operational messages (not the message log). Silent if omitted. */
  logger?: Logger;
  random?: Random;
  repair?: boolean;
  /** Test seams: the fs the state store and the message log write through (a failing disk). */
  storeFs?: StoreOptions['fs'];
  logFs?: LogFileOptions['fs'];
  /** TLS, users file and AUTH limits (security.ts); none by default. */
  security?: SecurityOptions;
};

export interface ParityServer {
  readonly host: string;
  readonly port: number;
  readonly store: Store;
  readonly connections: number;
  /** Reopens the message log at its path (SIGHUP after logrotate moved it). */
  reopenLog(): Promise<void>;
  /** Reloads the TLS certificate and the users file (SIGHUP); rejects if one kept its old copy. */
  reload(): Promise<void>;
  /** Graceful stop: no new connections, answer what was received, BYE, flush state and log. */
  close(): Promise<void>;
}

/** Most bytes the message log holds in memory while its disk refuses writes. */
const LOG_BUFFER_CAP = 16 * 1024 * 1024;

/**
 * Opens the state and the log (failing before listening if either is unusable), then listens.
 */
export async function startServer(options: ServerOptions): Promise<ParityServer> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const limits: ServerLimits = { ...SERVER_DEFAULTS, ...options.limits };
  const security = await openSecurity(options.security); // bad TLS or users files: fail first
  // Before anything touches the state folder: a second server must not even clean its temp files.
  const lock = await lockStateFile(options.statePath);
  let logFile: LogFile;
  let store: Store;
  try {
    logFile = await LogFile.open(options.logPath, {
      flushMs: options.logFlushMs ?? SERVER_DEFAULTS.logFlushMs,
      maxBufferedBytes: LOG_BUFFER_CAP,
      clock: realClock,
      onError: (err) => logger.error({ err }, 'message log write failed'),
      ...(options.logFs ? { fs: options.logFs } : {}),
    });
  } catch (err) {
    await lock.release();
    throw err;
  }
  try {
    store = await Store.open(options.statePath, {
      journal: logFile,
      repair: options.repair ?? false,
      ...(options.storeFs ? { fs: options.storeFs } : {}),
    });
  } catch (err) {
    await logFile.close().catch(() => {});
    await lock.release();
    throw err;
  }
  const messageLog = new MessageLog(logFile);
  const byId = new Map<string, Connection>();
  const open = new Set<Connection>();
  let connectionCount = 0;
  let closing: Promise<void> | null = null;

  const deps = {
    store,
    random: options.random ?? Math.random,
    limits,
    messageLog,
    auth: security.auth,
    claim(id: string, conn: Connection) {
      const previous = byId.get(id);
      byId.set(id, conn);
      return previous;
    },
    closed(conn: Connection) {
      open.delete(conn);
      if (conn.id !== null && byId.get(conn.id) === conn) byId.delete(conn.id);
    },
  };

  const server: Server = security.createServer(
    // 'drain' fires only after a write found more than highWaterMark buffered; at or below the
    // output cap, so a peer paused at the cap is always resumed when it catches up.
    { allowHalfOpen: true, highWaterMark: Math.min(limits.outputCapBytes, 16 * 1024) },
    (socket: Socket) => {
      const number = ++connectionCount;
      if (open.size >= limits.maxClients || closing !== null) {
        refuse(socket, number, messageLog, closing !== null);
        return;
      }
      open.add(new Connection(socket, number, deps));
    },
    (socket, reason) =>
      messageLog.forConnection(++connectionCount).event('refused', {
        remote: `${socket.remoteAddress}:${socket.remotePort}`,
        reason,
      }),
  );
  server.on('error', (err) => logger.error({ err }, 'server error'));
  server.listen(options.port ?? SERVER_DEFAULTS.port, options.host ?? SERVER_DEFAULTS.host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => Promise.reject(err)),
  ]).catch(async (err: unknown) => {
    await logFile.close().catch(() => {});
    await lock.release();
    throw err;
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');

  async function shutdown(): Promise<void> {
    server.close();
    const all = [...open];
    for (const conn of all) conn.finish('SHUTTING_DOWN', 'the server is stopping');
    const timer = setTimeout(() => {
      for (const conn of open) conn.destroy('shutdown timeout');
    }, limits.shutdownTimeoutMs);
    await Promise.all(all.map((conn) => conn.closed));
    clearTimeout(timer);
    await store.sync().catch((err: unknown) => logger.error({ err }, 'final state write failed'));
    await logFile.close().catch((err: unknown) => logger.error({ err }, 'final log write failed'));
    await lock.release(); // last: the files are final, another server may take them now
  }

  return {
    host: address.address,
    port: address.port,
    store,
    get connections() {
      return open.size;
    },
    // Placeholder until LogFile.reopen lands (issue 11); the CLI already wires SIGHUP to it.
    reopenLog: () => Promise.reject(new Error('log reopen is not implemented yet')),
    reload: () => security.reload(),
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}

/** Over the client limit (or stopping): one BYE and close, without a Connection. */
function refuse(socket: Socket, number: number, messageLog: MessageLog, stopping: boolean): void {
  const code = stopping ? 'SHUTTING_DOWN' : 'SERVER_BUSY';
  const line = formatReply({
    kind: 'BYE',
    code,
    text: stopping ? 'the server is stopping' : 'too many clients',
  });
  const log = messageLog.forConnection(number);
  log.event('refused', { remote: `${socket.remoteAddress}:${socket.remotePort}`, reason: code });
  log.line('out', line);
  socket.on('error', () => {});
  socket.setTimeout(LINGER_MS, () => socket.destroy());
  socket.end(`${line}\n`);
  socket.resume();
}
