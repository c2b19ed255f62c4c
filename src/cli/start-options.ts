import type { Logger } from 'pino';
import type { ServerOptions } from '../server/server.js';
import { httpServerOptions } from './http-options.js';
import { securityOptions } from './security-options.js';
import type { parseServerArgs } from './server-options.js';

type RunValues = Extract<Awaited<ReturnType<typeof parseServerArgs>>, { kind: 'run' }>['values'];

/** What the command line decided that the flags alone do not say. */
export type StartPlace = {
  statePath: string;
  logPath: string;
  /** --max-clients as fitted to the open-file limit. */
  maxClients: number;
  /** This process's number under --workers, or null for a single server. */
  worker: number | null;
  logger: Logger;
};

/** The parsed flags as startServer's options: every flag reaches the server here, and only here. */
export function startOptions(args: RunValues, place: StartPlace): ServerOptions {
  const { worker } = place;
  return {
    host: args.host,
    port: args.port,
    statePath: place.statePath,
    logPath: place.logPath,
    repair: args.repair,
    logFlushMs: args['log-flush-ms'],
    logBufferBytes: args['log-buffer-bytes'],
    logMaxBytes: args['log-max-bytes'],
    logKeep: args['log-keep'],
    commitDelayMs: args['commit-delay-ms'],
    // Under --workers the first worker alone serves HTTP: its view is of its own clients.
    ...(worker === null || worker === 1 ? httpServerOptions(args) : { http: null }),
    redis:
      args.store === undefined
        ? null
        : {
            url: args.store,
            waitReplicas: args['redis-wait'],
            allowVolatile: args['allow-volatile-store'],
            timeoutMs: args['store-timeout-ms'],
          },
    ...(args['node-name'] === undefined ? {} : { nodeName: args['node-name'] }),
    ...(worker === null ? {} : { worker }),
    proxyProtocol: args['proxy-protocol'],
    logger: place.logger,
    security: securityOptions(args),
    limits: {
      maxLineBytes: args['max-line-bytes'],
      idleTimeoutMs: args['idle-timeout-ms'],
      maxClients: place.maxClients,
      maxClientsPerAddress: args['max-clients-per-address'],
      maxIds: args['max-ids'],
      outputCapBytes: args['output-cap-bytes'],
      drainTimeoutMs: args['drain-timeout-ms'],
      shutdownTimeoutMs: args['shutdown-timeout-ms'],
    },
  };
}
