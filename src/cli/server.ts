import { pino, type Logger } from 'pino';
import { StateFileError } from '../store/state-file.js';
import { startServer } from '../server/server.js';
import { describeFdPlan, fitClientsToFdLimit, type FdDeps } from './fd-limit.js';
import { dataPaths, parseServerArgs } from './server-options.js';
import { passwd } from './passwd.js';
import { transfer } from './transfer.js';
import { checkSecurity } from './security-options.js';
import { handleSignals } from './signals.js';
import { logLiveView } from './http-options.js';
import { startOptions } from './start-options.js';
import { packageVersion } from './version.js';
import { checkCluster, hidePassword } from './cluster-options.js';
import { runPrimary, workerIndex, workerLogPath } from './workers.js';

async function opsLogger(): Promise<Logger> {
  // Pretty for a person at a terminal; JSON lines for anything reading the pipe. Imported only
  // for a terminal: pino-pretty took 85 ms of a start that a service manager waits on.
  if (!process.stdout.isTTY) return pino();
  const { default: pretty } = await import('pino-pretty');
  return pino(pretty({ colorize: true, sync: true }));
}

/** One line for a failed start: what went wrong and where, never a stack. */
export function startFailure(err: unknown, host: string, port: number): string {
  if (err instanceof StateFileError) return err.message;
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = `${e.address ?? host}:${e.port ?? port}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return `cannot start: ${where} is already in use; stop what holds it, or pick another --port`;
    case 'EACCES':
      return (
        `cannot start: no permission to listen on ${where}; ports below 1024 need root or ` +
        `CAP_NET_BIND_SERVICE`
      );
    case 'EADDRNOTAVAIL':
      return `cannot start: ${e.address ?? host} is not an address of this machine (--host)`;
    default:
      return `cannot start: ${(e.message ?? String(err)).split('\n')[0]}`;
  }
}

/**
 * Runs the server until SIGTERM/SIGINT. Resolves to the process exit code. `fds` is the test seam
 * for the open-file limit.
 */
export async function main(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  fds?: FdDeps,
): Promise<number> {
  if (argv[0] === 'passwd') return passwd(argv.slice(1));
  if (argv[0] === 'export' || argv[0] === 'import') return transfer(argv[0], argv.slice(1), env);
  const parsed = await parseServerArgs(argv, env);
  let problem = parsed.kind === 'error' ? parsed.message : null;
  if (parsed.kind === 'run') {
    try {
      checkSecurity(parsed.values);
      checkCluster(parsed.values, argv);
    } catch (err) {
      problem = (err as Error).message;
    }
  }
  if (problem !== null) {
    process.stderr.write(`parity-server: ${problem}\nRun with --help for the options.\n`);
    return 2;
  }
  if (parsed.kind === 'version') process.stdout.write(`${packageVersion()}\n`);
  if (parsed.kind !== 'run') return 0; // --help (yargs has printed it) or --version
  const args = parsed.values;
  const logger = await opsLogger();
  const worker = workerIndex();
  if (args.workers > 1 && worker === null) return runPrimary(args.workers, logger);
  const paths = dataPaths(args);
  const statePath = paths.statePath;
  // Under --workers each process writes its own message log (one writer per file).
  const logPath = worker === null ? paths.logPath : workerLogPath(paths.logPath, worker);
  const fit = fitClientsToFdLimit(args['max-clients'], fds);
  for (const line of describeFdPlan(fit)) logger[line.level](line.fields, line.msg);
  let server;
  try {
    server = await startServer(
      startOptions(args, { statePath, logPath, maxClients: fit.maxClients, worker, logger }),
    );
  } catch (err) {
    const failure = startFailure(err, args.host, args.port);
    // A Redis client's error may quote the URL it was given: never echo its password.
    process.stderr.write(
      `parity-server: ${args.store ? failure.split(args.store).join(hidePassword(args.store)) : failure}\n`,
    );
    return 1;
  }
  if (server.setAside !== null) {
    logger.warn(
      { state: statePath, setAside: server.setAside },
      `--repair: the state file was invalid; set aside as ${server.setAside}, starting empty`,
    );
  }
  // Before the ready line: whoever waits for it may signal at once (and SIGUSR1 must never reach
  // Node's inspector).
  const signals = handleSignals(server, logger, logPath);
  logger.info(
    {
      host: server.host,
      port: server.port,
      ...(args.store === undefined ? { state: statePath } : { store: server.store.description }),
      log: logPath,
      ...(server.nodeName === null ? {} : { node: server.nodeName }),
      ids: server.store.size,
      maxClients: fit.maxClients,
      version: packageVersion(),
    },
    `listening on ${server.host}:${server.port}; ${args.store ? 'store' : 'state'} ${args.store ? server.store.description : statePath}, log ${logPath}`,
  );
  // Under --workers only the first serves HTTP (start-options.ts): the others have no view to miss.
  if (worker === null || worker === 1) logLiveView(logger, server, args);
  const code = await signals.exit;
  signals.remove();
  return code;
}
