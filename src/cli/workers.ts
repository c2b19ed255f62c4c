import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

/** The worker's number (1…N) under `--workers`, or null in a single-process server. */
export function workerIndex(env: NodeJS.ProcessEnv = process.env): number | null {
  if (!cluster.isWorker) return null;
  const n = Number(env.PARITY_WORKER_INDEX);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** `logs/messages.log` as worker 2's own log: `logs/messages.w2.log`; each writes its own. */
export function workerLogPath(logPath: string, index: number): string {
  const dot = logPath.lastIndexOf('.');
  const slash = logPath.lastIndexOf('/');
  return dot > slash + 1
    ? `${logPath.slice(0, dot)}.w${index}${logPath.slice(dot)}`
    : `${logPath}.w${index}`;
}

/** A worker that dies unasked is started again after this long (nginx's master does the same). */
const RESTART_DELAY_MS = 1_000;

/**
 * The primary of `--workers N` (node:cluster): N server processes accept on one port, so every
 * core serves. Like nginx's master it serves no client itself: it starts the workers, passes
 * SIGTERM/SIGINT (stop) and SIGHUP/SIGUSR1 (reopen logs, reload) to each, restarts one that dies
 * unasked, and exits once all have stopped, with the worst exit code. Resolves to that code.
 */
export function runPrimary(count: number, logger: Logger): Promise<number> {
  let stopping = false;
  let worst = 0;
  const workers = new Map<number, Worker>(); // index -> worker
  const fork = (index: number) => {
    const worker = cluster.fork({ PARITY_WORKER_INDEX: String(index) });
    workers.set(index, worker);
    worker.on('exit', (code, signal) => {
      workers.delete(index);
      if (stopping) {
        worst = Math.max(worst, code ?? 1);
        if (workers.size === 0) done(worst);
        return;
      }
      logger.error({ worker: index, code, signal }, `worker ${index} died; restarting it`);
      setTimeout(() => !stopping && fork(index), RESTART_DELAY_MS).unref();
    });
  };
  let done!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (done = resolve));
  const pass = (signal: NodeJS.Signals) => {
    if (signal === 'SIGTERM' || signal === 'SIGINT') {
      if (stopping) return; // each worker takes its own second signal
      stopping = true;
      logger.info({ signal, workers: workers.size }, 'stopping the workers');
      if (workers.size === 0) done(worst);
    }
    for (const worker of workers.values()) worker.process.kill(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
  for (const signal of signals) process.on(signal, pass);
  for (let index = 1; index <= count; index++) fork(index);
  return exited.finally(() => {
    for (const signal of signals) process.off(signal, pass);
  });
}
