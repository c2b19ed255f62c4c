import type { Logger } from 'pino';
import type { HttpOptions } from '../http/server.js';
import { HTTP_DEFAULTS } from '../monitor/defaults.js';

/**
 * The HTTP side's flags. `--http-port` has no yargs default on purpose: whether it was given (flag
 * or PARITY_HTTP_PORT) decides what a taken port means, an error or running without HTTP.
 */
export const HTTP_CLI_OPTIONS = {
  'http-port': {
    type: 'number',
    describe: `HTTP port of the live view, /metrics and health checks (0 picks a free one) [default: ${HTTP_DEFAULTS.httpPort}, or none if that is taken]`,
  },
  http: {
    type: 'boolean',
    default: true,
    describe: 'serve the HTTP side (--no-http turns it off)',
  },
  'http-max-viewers': {
    type: 'number',
    default: HTTP_DEFAULTS.httpMaxViewers,
    describe: 'live-view event streams open at once',
  },
} as const;

type HttpArgs = { 'http-port'?: number; http: boolean; 'http-max-viewers': number };

/** Throws on a value the flags must not take (yargs `.check`). */
export function checkHttpArgs(args: HttpArgs): void {
  const port = args['http-port'];
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new Error(`--http-port must be an integer 0-65535, got ${port}`);
  }
  const viewers = args['http-max-viewers'];
  if (!Number.isInteger(viewers) || viewers < 1) {
    throw new Error(`--http-max-viewers must be a positive integer, got ${viewers}`);
  }
}

/** The flags as startServer's `http` option. */
export function httpServerOptions(args: HttpArgs): { http: HttpOptions | null } {
  if (!args.http) return { http: null };
  const port = args['http-port'];
  return {
    http: {
      port: port ?? HTTP_DEFAULTS.httpPort,
      required: port !== undefined,
      maxViewers: args['http-max-viewers'],
    },
  };
}

/**
 * The console line right after "listening": the live view's address, or why there is none. Said
 * after the ready line, so scripts that read the first line still find "listening" there.
 */
export function logLiveView(
  logger: Logger,
  server: { httpUrl: string | null },
  args: HttpArgs,
): void {
  if (server.httpUrl !== null) {
    logger.info({ liveView: server.httpUrl }, `live view at ${server.httpUrl}`);
  } else if (args.http) {
    const port = HTTP_DEFAULTS.httpPort;
    logger.warn(
      { httpPort: port },
      `HTTP port ${port} is taken (another server?): running without the live view, /metrics and health checks`,
    );
  }
}
