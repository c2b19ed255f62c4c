import { pino, type DestinationStream, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { ClientEvent } from './types.js';

export type OutputOptions = {
  id: string;
  /** Only errors (ERR replies, fatal BYEs, protocol errors) are shown. */
  quiet: boolean;
  /** Human-readable lines (for a TTY) instead of JSON lines. */
  pretty: boolean;
  /** Where to write; stdout by default. Tests pass a stream they read back. */
  destination?: DestinationStream;
  /**
   * Stdout failed, typically EPIPE: its reader is gone (`bin/client | head`). The client should
   * stop then, as `yes | head` does, instead of counting on unseen.
   */
  onOutputError?: (err: NodeJS.ErrnoException) => void;
};

/**
 * One line per event: pino-pretty on a TTY, JSON lines otherwise. Writes are synchronous so the
 * last lines are out before process.exit, and so a piped reader sees each event as it happens.
 */
export function createLogger(options: OutputOptions): Logger {
  const level = options.quiet ? 'error' : 'info';
  const base = { name: options.id, level, base: { pid: process.pid } };
  if (!options.pretty) {
    if (options.destination) return pino(base, options.destination);
    const stdout = pino.destination({ dest: 1, sync: true });
    stdout.on('error', (err: NodeJS.ErrnoException) => options.onOutputError?.(err));
    return pino(base, stdout);
  }
  const stream = pinoPretty({
    destination: options.destination ?? 1,
    sync: true,
    colorize: pinoPretty.isColorSupported,
    translateTime: 'HH:MM:ss.l',
    ignore: 'pid,hostname',
    // Each message already says everything; the fields are there for the JSON reader.
    hideObject: true,
  });
  return pino(base, stream);
}

export type Endpoint = { host: string; port: number };

/** The message (for people) and level of each event; its fields go into the JSON line. */
export function logEvent(logger: Logger, where: Endpoint, e: ClientEvent): void {
  switch (e.type) {
    case 'connecting':
      return logger.info(
        { event: e.type, ...where, attempt: e.attempt },
        `connecting to ${where.host}:${where.port}`,
      );
    case 'connected':
      return logger.info({ event: e.type, ...where }, 'connected');
    case 'sent':
      return logger.info({ event: e.type, line: e.line }, `> ${e.line}`);
    case 'received':
      return logger[e.error ? 'error' : 'info']({ event: e.type, line: e.line }, `< ${e.line}`);
    case 'increment':
      return logger.info(
        { event: e.type, from: e.from, to: e.to },
        `increment ${e.from} -> ${e.to}`,
      );
    case 'disconnected':
      return logger.warn({ event: e.type, reason: e.reason }, `disconnected: ${e.reason}`);
    case 'reconnecting':
      return logger.info(
        { event: e.type, delayMs: e.delayMs, attempt: e.attempt },
        `reconnecting in ${e.delayMs} ms`,
      );
    case 'protocol-error':
      return logger.error({ event: e.type, reason: e.reason }, e.reason);
    case 'stopping':
      return logger.info({ event: e.type, reason: e.reason }, `stopping (${e.reason})`);
    case 'stopped': {
      const msg = `closed: ${e.reason}; last value ${e.value ?? 'none'}`;
      const fields = { event: e.type, code: e.code, reason: e.reason, value: e.value };
      return logger[e.code === 0 ? 'info' : 'error'](fields, msg);
    }
  }
}
