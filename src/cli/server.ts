import yargs from 'yargs';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { SERVER_DEFAULTS } from '../limits.js';
import { StateFileError } from '../store/state-file.js';
import { startServer } from '../server/server.js';
import { unknownArgument } from './args.js';
import { checkHttpArgs, HTTP_CLI_OPTIONS, httpServerOptions, logLiveView } from './http-options.js';

const int = (describe: string, value: number) =>
  ({ type: 'number', default: value, describe }) as const;

const OPTIONS = {
  host: { type: 'string', default: SERVER_DEFAULTS.host, describe: 'address to listen on' },
  port: int('TCP port (0 picks a free one)', SERVER_DEFAULTS.port),
  state: { type: 'string', default: SERVER_DEFAULTS.state, describe: 'JSON state file' },
  log: { type: 'string', default: SERVER_DEFAULTS.log, describe: 'JSON-lines message log' },
  repair: {
    type: 'boolean',
    default: false,
    describe: 'set an invalid state file aside and start empty',
  },
  'max-line-bytes': int('longest request line, without LF/CRLF', SERVER_DEFAULTS.maxLineBytes),
  'idle-timeout-ms': int('close connections silent this long', SERVER_DEFAULTS.idleTimeoutMs),
  'max-clients': int('refuse connections beyond this many', SERVER_DEFAULTS.maxClients),
  'output-cap-bytes': int(
    'stop reading a peer with this much unsent output',
    SERVER_DEFAULTS.outputCapBytes,
  ),
  'drain-timeout-ms': int(
    'drop a peer over the output cap this long',
    SERVER_DEFAULTS.drainTimeoutMs,
  ),
  'log-flush-ms': int('write the message log at least this often', SERVER_DEFAULTS.logFlushMs),
  'shutdown-timeout-ms': int(
    'on SIGTERM, wait this long for peers',
    SERVER_DEFAULTS.shutdownTimeoutMs,
  ),
  ...HTTP_CLI_OPTIONS,
} as const;

function parser(argv: string[]) {
  return yargs(argv)
    .scriptName('parity-server')
    .usage(
      '$0 [options]\n\nThe Parity counter server. Every option can also be set as PARITY_<NAME>.',
    )
    .env('PARITY')
    .options(OPTIONS)
    .check((args) => {
      if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
        throw new Error(`--port must be an integer 0-65535, got ${args.port}`);
      }
      for (const name of [
        'max-line-bytes',
        'idle-timeout-ms',
        'max-clients',
        'output-cap-bytes',
        'drain-timeout-ms',
        'log-flush-ms',
        'shutdown-timeout-ms',
      ] as const) {
        const value = args[name];
        if (!Number.isInteger(value) || value < 1)
          throw new Error(`--${name} must be a positive integer, got ${value}`);
      }
      checkHttpArgs(args);
      return true;
    })
    .help()
    .version(false)
    .exitProcess(false)
    .fail((message, err) => {
      throw err ?? new Error(message);
    });
}

function opsLogger(): Logger {
  // Pretty for a person at a terminal; JSON lines for anything reading the pipe.
  return process.stdout.isTTY ? pino(pretty({ colorize: true, sync: true })) : pino();
}

/** Runs the server until SIGTERM/SIGINT. Resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = await parser(argv).parseAsync();
    const unknown = unknownArgument(argv, Object.keys(OPTIONS), args._);
    if (unknown !== null) throw new Error(`Unknown argument: ${unknown}`);
  } catch (err) {
    process.stderr.write(
      `parity-server: ${(err as Error).message}\nRun with --help for the options.\n`,
    );
    return 2;
  }
  if (args.help) return 0;
  const logger = opsLogger();
  let server;
  try {
    server = await startServer({
      host: args.host,
      port: args.port,
      statePath: args.state,
      logPath: args.log,
      repair: args.repair,
      logFlushMs: args['log-flush-ms'],
      ...httpServerOptions(args),
      logger,
      limits: {
        maxLineBytes: args['max-line-bytes'],
        idleTimeoutMs: args['idle-timeout-ms'],
        maxClients: args['max-clients'],
        outputCapBytes: args['output-cap-bytes'],
        drainTimeoutMs: args['drain-timeout-ms'],
        shutdownTimeoutMs: args['shutdown-timeout-ms'],
      },
    });
  } catch (err) {
    const reason =
      err instanceof StateFileError ? err.message : `cannot start: ${(err as Error).message}`;
    process.stderr.write(`parity-server: ${reason}\n`);
    return 1;
  }
  logger.info(
    {
      host: server.host,
      port: server.port,
      state: args.state,
      log: args.log,
      ids: server.store.size,
    },
    `listening on ${server.host}:${server.port}`,
  );
  logLiveView(logger, server, args);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting at once');
        resolve(130);
        return;
      }
      stopping = true;
      logger.info({ signal, connections: server.connections }, 'shutting down');
      server.close().then(
        () => {
          logger.info('stopped; state and log flushed');
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
