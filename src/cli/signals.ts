import type { Logger } from 'pino';
import type { ParityServer } from '../server/server.js';

type Signals = Pick<NodeJS.Process, 'on' | 'off'>;

/**
 * nginx's signals, as far as Parity has them:
 * - SIGTERM, SIGINT: graceful stop (BYE, flush); a second one exits at once with 130.
 * - SIGHUP: reopen the message log after logrotate moved it, and reload TLS and users files. Failing to reopen is logged and the
 *   server keeps writing where it was: losing the log must not stop the service.
 * - SIGUSR1: the same as SIGHUP (nginx's reopen signal). Any listener for it also keeps Node from
 *   starting its inspector on 127.0.0.1:9229, which would give every local user code execution.
 * - SIGUSR2: ignored, so a stray one no longer kills the server without BYE or flush.
 * Resolves `exit` with the process exit code once the server has stopped.
 */
export function handleSignals(
  server: ParityServer,
  logger: Logger,
  logPath: string,
  proc: Signals = process,
): { exit: Promise<number>; remove(): void } {
  let stopping = false;
  let reopening = Promise.resolve();
  let resolveExit!: (code: number) => void;
  const exit = new Promise<number>((r) => (resolveExit = r));

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting at once');
      resolveExit(130);
      return;
    }
    stopping = true;
    logger.info({ signal, connections: server.connections }, 'shutting down');
    server.close().then(
      () => {
        logger.info('stopped; state and log flushed');
        resolveExit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        resolveExit(1);
      },
    );
  };
  // One reopen at a time: two quick HUPs must not race on the same file. Then the TLS
  // certificate and the users file are read again; each that fails keeps its old copy.
  const reopen = (signal: NodeJS.Signals) => {
    reopening = reopening
      .then(() => server.reopenLog())
      .then(
        () => logger.info({ signal, log: logPath }, `message log reopened: ${logPath}`),
        (err: unknown) =>
          logger.error(
            { signal, log: logPath, err },
            `message log reopen failed, still writing the old file: ${(err as Error).message}`,
          ),
      )
      .then(() => server.reload())
      .then(
        (reloaded) => {
          if (reloaded.length > 0)
            logger.info({ signal, reloaded }, `reloaded ${reloaded.join(' and ')}`);
        },
        (err: unknown) => logger.error({ signal, err }, `reload failed: ${(err as Error).message}`),
      );
  };
  const ignore = (signal: NodeJS.Signals) => logger.debug({ signal }, 'signal ignored');

  const handlers: Array<[NodeJS.Signals, (s: NodeJS.Signals) => void]> = [
    ['SIGTERM', stop],
    ['SIGINT', stop],
    ['SIGHUP', reopen],
    ['SIGUSR1', reopen],
    ['SIGUSR2', ignore],
  ];
  for (const [signal, fn] of handlers) proc.on(signal, fn);
  return {
    exit,
    remove: () => {
      for (const [signal, fn] of handlers) proc.off(signal, fn);
    },
  };
}
