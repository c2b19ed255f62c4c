import yargs from 'yargs';
import { CLIENT_DEFAULTS as D, EXIT } from '../client/defaults.js';
import { createLogger } from '../client/output.js';
import { runClient } from '../client/run.js';
import { isValidId } from '../protocol/syntax.js';
import { unknownArgument } from './args.js';
import {
  CLIENT_SECURITY_OPTIONS,
  clientSecurity,
  type ClientSecurityArgs,
} from './client-security-options.js';

export type ClientArgs = ClientSecurityArgs & {
  id: string;
  host: string;
  port: number;
  tickMs: number;
  switchMinMs: number;
  switchMaxMs: number;
  quiet: boolean;
};

const FLAGS = [
  ...['id', 'host', 'port', 'tick-ms', 'switch-min-ms', 'switch-max-ms', 'quiet'],
  ...Object.keys(CLIENT_SECURITY_OPTIONS),
];

function parser(argv: string[]) {
  return yargs(argv)
    .scriptName('parity-client')
    .usage('Usage: $0 --id <id> [options]\n\nRuns the counter for <id> against a Parity server.')
    .env('PARITY')
    .options({
      id: { type: 'string', describe: 'Client id: 1-64 of A-Z a-z 0-9 _ . -' },
      host: { type: 'string', default: D.host, describe: 'Server host' },
      port: { type: 'number', default: D.port, describe: 'Server port' },
      'tick-ms': { type: 'number', default: D.tickMs, describe: 'Period of VALUE sends' },
      'switch-min-ms': {
        type: 'number',
        default: D.switchMinMs,
        describe: 'Shortest EVEN/ODD delay',
      },
      'switch-max-ms': {
        type: 'number',
        default: D.switchMaxMs,
        describe: 'Longest EVEN/ODD delay',
      },
      quiet: { type: 'boolean', default: false, describe: 'Show errors only' },
      ...CLIENT_SECURITY_OPTIONS,
    })
    .epilogue(
      'Every option can also be set as a PARITY_* environment variable (PARITY_PORT=7071).\n' +
        'Output: one line per event; readable on a TTY, JSON lines when piped.\n' +
        `Exit: ${EXIT.ok} after SIGINT/SIGTERM, ${EXIT.fatal} after BYE TAKEN_OVER or ` +
        `LINE_TOO_LONG, ${EXIT.usage} on bad arguments.`,
    )
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .help()
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });
}

class UsageError extends Error {}

const isWhole = (n: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  Number.isInteger(n) && n >= min && n <= max;

/** The first thing wrong with the arguments, or null. */
function problem(a: ClientArgs): string | null {
  if (a.id === undefined || a.id === '') return 'missing --id';
  if (!isValidId(a.id)) return `invalid --id "${a.id}": use 1-64 of A-Z a-z 0-9 _ . -`;
  if (a.host === '') return 'invalid --host: empty';
  if (!isWhole(a.port, 1, 65535)) return `invalid --port ${a.port}: use an integer 1-65535`;
  if (!isWhole(a.tickMs, 1)) return `invalid --tick-ms ${a.tickMs}: use an integer >= 1`;
  if (!isWhole(a.switchMinMs, 0)) return `invalid --switch-min-ms ${a.switchMinMs}`;
  if (!isWhole(a.switchMaxMs, a.switchMinMs)) {
    return `invalid --switch-max-ms ${a.switchMaxMs}: use an integer >= --switch-min-ms`;
  }
  return null;
}

/** The parsed arguments, or the exit code when there is nothing to run (--help, bad arguments). */
export async function parseArgs(argv: string[]): Promise<ClientArgs | number> {
  const y = parser(argv);
  let reason: string | null;
  try {
    const a = await y.parseAsync();
    if (a.help === true) return EXIT.ok; // yargs has printed the help
    const unknown = unknownArgument(argv, FLAGS, a._);
    reason =
      unknown === null ? problem(a as unknown as ClientArgs) : `Unknown argument: ${unknown}`;
    if (reason === null) return a as unknown as ClientArgs;
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
  }
  process.stderr.write(`parity-client: ${reason.replace(/\s+/g, ' ')}\n\n${await y.getHelp()}\n`);
  return EXIT.usage;
}

export async function main(argv: string[]): Promise<number> {
  const args = await parseArgs(argv);
  if (typeof args === 'number') return args;
  const security = await clientSecurity(args).catch((err: Error) => err);
  if (security instanceof Error) {
    process.stderr.write(`parity-client: ${security.message}\n`);
    return EXIT.usage;
  }
  let outputClosed = false;
  const logger = createLogger({
    id: args.id,
    quiet: args.quiet,
    pretty: process.stdout.isTTY === true,
    // Once, and not from inside the failing write: stopping logs an event, which fails again.
    onOutputError: () => {
      if (outputClosed) return;
      outputClosed = true;
      queueMicrotask(() => client.stop('output closed'));
    },
  });
  const client = runClient({
    ...args,
    ...security,
    backoffBaseMs: D.backoffBaseMs,
    backoffMaxMs: D.backoffMaxMs,
    quitTimeoutMs: D.quitTimeoutMs,
    logger,
  });
  // `once`: a second Ctrl-C gets Node's default handling and ends the process at once.
  const stop = (signal: NodeJS.Signals) => client.stop(signal);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const result = await client.done;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return result.code;
}
