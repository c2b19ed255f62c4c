import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import pinoPretty from 'pino-pretty';
import type { LogRecord } from '../client/audit.js';

/**
 * Child processes shown in one terminal (`npm run demo`, `npm run cluster`): each output line
 * labelled with its process, pino records made readable, every child stopped in order at the end
 * and killed if the script dies first.
 */
export type Proc = {
  name: string;
  child: ChildProcess;
  /** Resolves when it has exited, or could not be started at all. */
  exited: Promise<unknown>;
  /** A client's last value, as its own output tells it (see `trackLastValue`). */
  last: number | null;
};

export type Launch = {
  name: string;
  /** Picks the label's colour. */
  index: number;
  /** Width every label is padded to, so the columns line up. */
  width: number;
  command: string;
  args: string[];
  cwd: string;
  /** Each stdout line, with its pino record when it is one. */
  onLine?: (line: string, record: LogRecord | null) => void;
};

const tty = process.stdout.isTTY === true;
const pretty = pinoPretty.prettyFactory({
  colorize: tty && pinoPretty.isColorSupported,
  translateTime: 'HH:MM:ss.l',
  ignore: 'pid,hostname,name',
  hideObject: true,
});
const COLORS = [36, 33, 35, 32, 34, 31, 96, 93]; // cyan, yellow, magenta, green, blue, red, bright

function label(name: string, index: number, width: number): string {
  const text = `${name.padEnd(width)} |`;
  return tty ? `\x1b[${COLORS[index % COLORS.length]}m${text}\x1b[0m` : text;
}

/** Spawns `command` with piped output and prints each of its lines (stdout and stderr) labelled. */
export function startLabelled(launch: Launch): Proc {
  // detached: Ctrl-C in the terminal reaches only the script, which then stops the others in order.
  const child = spawn(launch.command, launch.args, {
    cwd: launch.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
    detached: true,
  });
  const prefix = label(launch.name, launch.index, launch.width);
  const exited = new Promise((resolve) => {
    child.once('exit', resolve);
    // A command that cannot be started emits no 'exit': say why, and count it as exited.
    child.on('error', (err) => {
      process.stdout.write(`${prefix} ${err.message}\n`);
      if (child.pid === undefined) resolve(err);
    });
  });
  const proc: Proc = { name: launch.name, child, exited, last: null };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let record: LogRecord | null = null;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed !== null && typeof parsed === 'object') record = parsed as LogRecord;
    } catch {
      // not a log record: print it as it is
    }
    process.stdout.write(`${prefix} ${record ? pretty(record).trimEnd() : line}\n`);
    launch.onLine?.(line, record);
  });
  createInterface({ input: child.stderr! }).on('line', (line) =>
    process.stdout.write(`${prefix} ${line}\n`),
  );
  return proc;
}

/** Keeps `proc.last` on a client's last value: its HELLO answer, each value sent, its exit value. */
export function trackLastValue(proc: () => Proc) {
  return (_line: string, r: LogRecord | null) => {
    if (r === null) return;
    const match = /^VALUE (\d+)$/.exec(String(r['line']));
    if (match && (r['event'] === 'sent' || r['event'] === 'received'))
      proc().last = Number(match[1]);
    if (r['event'] === 'stopped' && typeof r['value'] === 'number') proc().last = r['value'];
  };
}

export const running = (proc: Proc) =>
  proc.child.exitCode === null && proc.child.signalCode === null;

/** Sends `signal`; SIGKILL if it has not exited `ms` later. Resolves once it has exited. */
export async function stop(proc: Proc, signal: NodeJS.Signals, ms: number): Promise<void> {
  if (!running(proc) || proc.child.pid === undefined) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), ms);
  await proc.exited;
  clearTimeout(timer);
}

/**
 * A second Ctrl-C, or the script dying, must not leave detached children running: SIGKILL every
 * one of `procs` (the list may grow after this call) still running when the process exits.
 */
export function killOnExit(procs: readonly Proc[]): void {
  process.on('exit', () => procs.forEach((p) => running(p) && p.child.kill('SIGKILL')));
}

/** Resolves with the first of these signals to arrive. */
export const firstSignal = (...signals: NodeJS.Signals[]) =>
  Promise.race(signals.map((s) => once(process, s).then(() => s)));
