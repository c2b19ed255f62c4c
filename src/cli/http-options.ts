import type { Logger } from 'pino';
import type { HttpOptions } from '../http/server.js';
import { HTTP_DEFAULTS } from '../monitor/defaults.js';
import { int } from './options.js';

/**
 * The HTTP side's flags. `--http-port` has no default on purpose: whether it was given (flag or
 * PARITY_HTTP_PORT) decides what a taken port means, an error or running without HTTP.
 */
export const HTTP_CLI_OPTIONS = {
  'http-port': {
    kind: 'int',
    describe: `HTTP port of the live view, /metrics and health checks (0 picks a free one) [default: ${HTTP_DEFAULTS.httpPort}, or none if that is taken]`,
    min: 0,
    max: 65535,
  },
  http: { kind: 'bool', describe: 'serve the HTTP side (--no-http turns it off)', default: true },
  'http-max-viewers': int('live-view event streams open at once', HTTP_DEFAULTS.httpMaxViewers),
} as const;

type HttpArgs = { 'http-port'?: number | undefined; http: boolean; 'http-max-viewers': number };

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
