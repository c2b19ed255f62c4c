import type { Server, Socket } from 'node:net';
import { once } from 'node:events';
import { dirname } from 'node:path';
import { pino, type Logger } from 'pino';
import { realClock, turnClock, type Random } from '../clock.js';
import { SERVER_DEFAULTS, type ServerLimits } from '../limits.js';
import { LogFile, type LogFileOptions } from '../log/log-file.js';
import { MessageLog } from '../log/message-log.js';
import { checkPrivatePath, makePrivateFolder } from '../fs/private-folder.js';
import { realFilePath } from '../fs/real-path.js';
import { lockStateFile } from '../store/state-lock.js';
import { Store, type StoreOptions } from '../store/store.js';
import { FileValueStore } from '../store/file-store.js';
import { LoggedStore } from '../store/logged-store.js';
import type { ValueStore } from '../store/value-store.js';
import { Connection } from './connection.js';
import { Admission } from './admission.js';
import { openSecurity, type SecurityOptions } from './security.js';
import { listenHttp, type HttpOptions, type HttpSide } from '../http/server.js';
import { Monitor } from '../monitor/monitor.js';
import { startSummary } from '../monitor/summary.js';

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
  /** The store's checkpoint limits (STORE_DEFAULTS); tests make checkpoints frequent. */
  storeCheckpoint?: Pick<StoreOptions, 'checkpointBytes' | 'checkpointMs'>;
  /** See STORE_DEFAULTS.commitDelayMs (the file store only; 0 turns it off). */
  commitDelayMs?: number;
  logFs?: LogFileOptions['fs'];
  /** TLS, users file and AUTH limits (security.ts); none by default. */
  security?: SecurityOptions;
  /** The HTTP side (live view, /metrics, health checks) on `host`; omitted or null: none. */
  http?: HttpOptions | null;
  /** Values in Redis (`--store redis://…`) instead of the state file; omitted or null: the file. */
  redis?: RedisChoice | null;
  /** This server in every message-log record; with Redis the default is `host:port`. */
  nodeName?: string;
  /** Under `--workers`: this process's number, added to the default node name. */
  worker?: number;
  /** Every connection starts with a PROXY v1/v2 header (behind HAProxy); without one it is closed. */
  proxyProtocol?: boolean;
};

export type RedisChoice = {
  url: string;
  waitReplicas: number;
  allowVolatile: boolean;
  timeoutMs: number;
};

export interface ParityServer {
  readonly host: string;
  readonly port: number;
  readonly store: ValueStore;
  /** Where `--repair` renamed an unreadable state file, or null. */
  readonly setAside: string | null;
  /** The `node` of every message-log record, or null if records carry none (one file store). */
  readonly nodeName: string | null;
  readonly connections: number;
  /** What the server counts; the HTTP side's live view and /metrics read it. */
  readonly monitor: Monitor;
  /** The live view's address; null without the HTTP side (off, or its default port taken). */
  readonly httpUrl: string | null;
  /** Reopens the message log at its path (SIGHUP after logrotate moved it). */
  reopenLog(): Promise<void>;
  /** Reloads the TLS certificate and the users file (SIGHUP); rejects if one kept its old copy. */
  reload(): Promise<string[]>;
  /** Graceful stop: no new connections, answer what was received, BYE, flush state and log. */
  close(): Promise<void>;
}

/**
 * Listens first, so a busy port fails before any file or folder is touched; connections that
 * arrive meanwhile wait, unread, until the state and the log are open. Then takes the state lock
 * (before anything touches the state folder: a second server must not even clean its temp
 * files), opens the log and the state (failing if either is unusable), and starts serving.
 */
export async function startServer(options: ServerOptions): Promise<ParityServer> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const limits: ServerLimits = { ...SERVER_DEFAULTS, ...options.limits };
  const security = await openSecurity(options.security); // bad TLS or users files: fail first
  let admission: Admission | null = null; // once serving; until then `early` is the bound
  const early: Socket[] = [];
  const server: Server = security.createServer(
    // 'drain' fires only after a write found more than highWaterMark buffered; at or below the
    // output cap, so a peer paused at the cap is always resumed when it catches up.
    { allowHalfOpen: true, highWaterMark: Math.min(limits.outputCapBytes, 16 * 1024) },
    (socket: Socket) => {
      admission?.handshakeDone(socket);
      if (admission !== null) admission.serve(socket);
      else if (early.length < limits.maxClients) {
        socket.on('error', () => {}); // a reset while it waits must not crash the start
        early.push(socket);
      } else socket.destroy();
    },
    (socket, reason) => admission?.refused(socket, reason),
    (raw) => admission?.admitHandshake(raw) ?? true,
  );
  server.listen(options.port ?? SERVER_DEFAULTS.port, options.host ?? SERVER_DEFAULTS.host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => Promise.reject(err)),
  ]);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  let opened: Awaited<ReturnType<typeof openFiles>>;
  let onLogDrain = () => {}; // nothing is paused on the log before serving starts
  const monitor = new Monitor();
  let http: HttpSide | null = null;
  try {
    if (options.http) http = await listenHttp(address.address, options.http, logger);
    // The log's drain resumes the connections it paused; they exist only once serving starts.
    opened = await openFiles(options, () => onLogDrain(), monitor.committed);
  } catch (err) {
    await http?.close();
    for (const socket of early) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
    throw err;
  }
  const { lock, logFile, store, setAside } = opened;
  server.on('error', (err) => logger.error({ err }, 'server error'));
  const nodeName =
    options.nodeName ??
    (options.redis
      ? `${address.address}:${address.port}${options.worker ? `/w${options.worker}` : ''}`
      : null);
  const now = turnClock();
  const messageLog = new MessageLog(monitor.tap(logFile), now, nodeName ?? undefined);
  monitor.store = store;
  if (http !== null) {
    // Imported only for an HTTP side: without prom-client and the sampler, a --no-http start
    // (every server behind HAProxy, most test children) reaches 'listening' ~30 ms sooner.
    const { serveHttp } = await import('../http/side.js');
    await serveHttp(http, monitor, options.http!);
  }
  const stopSummary = startSummary(monitor, logger);
  const waitingForLog = new Set<Connection>();
  let closing: Promise<void> | null = null;
  onLogDrain = () => {
    const waiting = [...waitingForLog];
    waitingForLog.clear();
    for (const conn of waiting) conn.resumeAfterLog();
  };

  const deps = {
    store,
    random: options.random ?? Math.random,
    limits,
    messageLog,
    now,
    auth: security.auth,
    monitor,
    closed(conn: Connection) {
      admitted.closed(conn);
      waitingForLog.delete(conn);
    },
    logBacklogged: () => logFile.backlogged,
    waitForLog(conn: Connection) {
      waitingForLog.add(conn);
    },
  };

  const admitted = new Admission({
    limits,
    monitor,
    messageLog,
    proxyProtocol: options.proxyProtocol ?? false,
    connect: (socket, number, peer) => new Connection(socket, number, deps, peer),
  });
  const { open } = admitted;
  admission = admitted;
  for (const socket of early.splice(0)) {
    if (socket.destroyed) continue;
    admitted.serve(socket);
  }

  async function shutdown(): Promise<void> {
    admitted.stopping = true;
    monitor.stopping = true;
    stopSummary();
    server.close();
    const all = [...open];
    for (const conn of all) conn.finish('SHUTTING_DOWN', 'the server is stopping');
    const timer = setTimeout(() => {
      for (const conn of open) conn.destroy('shutdown timeout');
    }, limits.shutdownTimeoutMs);
    await Promise.all(all.map((conn) => conn.closed));
    clearTimeout(timer);
    // Both are tried whatever the other did; a failure of either makes the stop a failure (a
    // non-zero exit), since acknowledged lines or values may be missing from disk.
    const failures: string[] = [];
    await store.close().catch((err: unknown) => {
      logger.error({ err }, 'final state write failed');
      failures.push('state');
    });
    await logFile.close().catch((err: unknown) => {
      logger.error({ err }, 'final log write failed');
      failures.push('message log');
    });
    await http?.close();
    await lock?.release(); // last: the files are final, another server may take them now
    if (failures.length > 0) throw new Error(`final write of the ${failures.join(' and ')} failed`);
  }

  return {
    host: address.address,
    port: address.port,
    store,
    setAside,
    nodeName,
    get connections() {
      return open.size;
    },
    reopenLog: () => logFile.reopen(),
    reload: () => security.reload(),
    monitor,
    httpUrl: http?.url ?? null,
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}

/**
 * The state lock, the message log and the store, in that order; on failure, none stays open.
 * With Redis there is no state file, so no lock: many servers share the store.
 */
async function openFiles(
  options: ServerOptions,
  onDrain: () => void,
  onCommit: StoreOptions['onCommit'],
) {
  const maxIds = options.limits?.maxIds ?? SERVER_DEFAULTS.maxIds;
  // StrictModes first: files in a folder another user can change are not ours to keep. Checked
  // before any folder is made (mkdir -p would follow another user's symlink), and again once they
  // exist: a missing folder is not checked, and another user may have made it first.
  for (const path of options.redis ? [options.logPath] : [options.statePath, options.logPath]) {
    await checkPrivatePath(path);
    await makePrivateFolder(dirname(await realFilePath(path)));
    await checkPrivatePath(path);
  }
  // Before anything touches the state folder: a second server must not even clean its temp files.
  const lock = options.redis ? null : await lockStateFile(options.statePath);
  let logFile: LogFile;
  try {
    logFile = await LogFile.open(options.logPath, {
      flushMs: options.logFlushMs ?? SERVER_DEFAULTS.logFlushMs,
      maxBufferedBytes: options.logBufferBytes ?? SERVER_DEFAULTS.logBufferBytes,
      maxBytes: options.logMaxBytes ?? SERVER_DEFAULTS.logMaxBytes,
      keep: options.logKeep ?? SERVER_DEFAULTS.logKeep,
      onDrain,
      clock: realClock,
      onError: (err) => options.logger?.error({ err }, 'message log write failed'),
      ...(options.logFs ? { fs: options.logFs } : {}),
    });
  } catch (err) {
    await lock?.release();
    throw err;
  }
  try {
    if (options.redis) {
      const store = await openRedis(options.redis, maxIds, logFile, onCommit, options.logger);
      return { lock, logFile, store, setAside: null };
    }
    const store = await Store.open(options.statePath, {
      journal: logFile,
      repair: options.repair ?? false,
      onCommit,
      warn: (details, message) => options.logger?.warn(details, message),
      ...(options.commitDelayMs !== undefined ? { commitDelayMs: options.commitDelayMs } : {}),
      ...options.storeCheckpoint,
      ...(options.storeFs ? { fs: options.storeFs } : {}),
    });
    return { lock, logFile, store: new FileValueStore(store, maxIds), setAside: store.setAside };
  } catch (err) {
    await logFile.close().catch(() => {});
    await lock?.release();
    throw err;
  }
}

/**
 * The Redis store, loaded only when asked for: `npm start` on the file store never loads a Redis
 * client. Every value a server acknowledges is in Redis; the message log is still this server's
 * own, and each write waits for its request line to be flushed there too (protocol.md).
 */
async function openRedis(
  choice: RedisChoice,
  maxIds: number,
  log: LogFile,
  onCommit: StoreOptions['onCommit'],
  logger: Logger | undefined,
): Promise<ValueStore> {
  const { openRedisStore } = await import('../store/redis/redis-store.js');
  const store = await openRedisStore(choice.url, {
    maxIds,
    timeoutMs: choice.timeoutMs,
    waitReplicas: choice.waitReplicas,
    allowVolatile: choice.allowVolatile,
    info: (details: Record<string, unknown>, message: string) => logger?.info(details, message),
    warn: (details: Record<string, unknown>, message: string) => logger?.warn(details, message),
  });
  return new LoggedStore(store, log, onCommit);
}
