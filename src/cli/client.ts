import { CLIENT_DEFAULTS as D, EXIT } from '../client/defaults.js';
import { createLogger } from '../client/output.js';
import { runClient } from '../client/run.js';
import { isValidId } from '../protocol/syntax.js';
import {
  CLIENT_SECURITY_OPTIONS,
  clientSecurity,
  type ClientSecurityArgs,
} from './client-security-options.js';
import { bool, int, ms, optionalStr, parseOptions, str } from './options.js';
import { packageVersion } from './version.js';

export type ClientArgs = ClientSecurityArgs & {
  id: string;
  host: string;
  port: number;
  tickMs: number;
  switchMinMs: number;
  switchMaxMs: number;
  quiet: boolean;
};

const CLIENT_OPTIONS = {
  id: optionalStr('Client id: 1-64 of A-Z a-z 0-9 _ . -'),
  host: str('Server host', D.host),
  port: int('Server port', D.port, 1, 65535),
  'tick-ms': ms('Period of VALUE sends', D.tickMs),
  'switch-min-ms': ms('Shortest EVEN/ODD delay', D.switchMinMs, 0),
  'switch-max-ms': ms('Longest EVEN/ODD delay', D.switchMaxMs, 0),
  quiet: bool('Show errors only'),
  ...CLIENT_SECURITY_OPTIONS,
} as const;

/** The parsed arguments, or the exit code when there is nothing to run (--help, bad arguments). */
export async function parseArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClientArgs | number> {
  const parsed = await parseOptions(argv, env, CLIENT_OPTIONS, {
    name: 'parity-client',
    usage: 'Usage: $0 --id <id> [options]\n\nRuns the counter for <id> against a Parity server.',
    epilogue:
      'Every option can also be set as a PARITY_* environment variable (PARITY_PORT=7071);\n' +
      'booleans take 1, 0, true or false (PARITY_QUIET=1).\n' +
      'Output: one line per event; readable on a TTY, JSON lines when piped.\n' +
      `Exit: ${EXIT.ok} after SIGINT/SIGTERM, ${EXIT.fatal} after BYE TAKEN_OVER or ` +
      `LINE_TOO_LONG, ${EXIT.usage} on bad arguments.`,
  });
  if (parsed.kind === 'help') return EXIT.ok; // yargs has printed the help
  if (parsed.kind === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  let reason: string;
  if (parsed.kind === 'error') {
    reason = parsed.message;
  } else {
    const v = parsed.values;
    if (v.id === undefined || v.id === '') reason = 'missing --id';
    else if (!isValidId(v.id)) reason = `invalid --id "${v.id}": use 1-64 of A-Z a-z 0-9 _ . -`;
    else if (v.host === '') reason = 'invalid --host: empty';
    else if (v['switch-max-ms'] < v['switch-min-ms']) {
      reason = `invalid --switch-max-ms ${v['switch-max-ms']}: use an integer >= --switch-min-ms`;
    } else {
      return {
        id: v.id,
        host: v.host,
        port: v.port,
        tickMs: v['tick-ms'],
        switchMinMs: v['switch-min-ms'],
        switchMaxMs: v['switch-max-ms'],
        quiet: v.quiet,
        tls: v.tls,
        'tls-ca': v['tls-ca'],
        'tls-cert': v['tls-cert'],
        'tls-key': v['tls-key'],
        'password-file': v['password-file'],
      };
    }
  }
  process.stderr.write(`parity-client: ${reason.replace(/\s+/g, ' ')}\n\n${await parsed.help()}\n`);
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
