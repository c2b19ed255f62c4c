import type { Logger } from 'pino';
import { realClock, type Clock, type Random } from '../clock.js';
import { CLIENT_DEFAULTS } from './defaults.js';
import type { ClientEvent, ClientOptions } from './types.js';
import { Client } from './machine.js';
import { logEvent } from './output.js';
import { tcpConnector, type TcpOptions } from './socket.js';

export type RunOptions = ClientOptions & {
  host: string;
  port: number;
  tls?: TcpOptions['tls'];
  logger: Logger;
  clock?: Clock;
  random?: Random;
  /** Sees every event too, after the logger: a seam for tests. */
  onEvent?: (event: ClientEvent) => void;
};

/** The real client: the machine wired to TCP, the system clock, Math.random and the logger. */
export function runClient(options: RunOptions): Client {
  const { host, port, logger } = options;
  const client = new Client(options, {
    clock: options.clock ?? realClock,
    random: options.random ?? Math.random,
    connect: tcpConnector({
      host,
      port,
      maxReplyBytes: CLIENT_DEFAULTS.maxReplyBytes,
      connectTimeoutMs: CLIENT_DEFAULTS.connectTimeoutMs,
      tls: options.tls ?? null,
    }),
    emit: (event) => {
      logEvent(logger, { host, port }, event);
      options.onEvent?.(event);
    },
  });
  void client.start();
  return client;
}
