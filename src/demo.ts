import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pinoPretty from 'pino-pretty';
import { auditLog, type LogRecord } from './client/audit.js';
import { CLIENT_DEFAULTS } from './client/defaults.js';

/**
 * `npm run demo`: bin/server and three bin/client in one terminal, each line labelled with its
 * process. Ctrl-C stops the clients first (each sends QUIT, so its last value is stored), then the
 * server, then prints each client's last value and whether the server's log follows the rules.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IDS = ['alice', 'bob', 'carol'];
/** Where the demo keeps its state and log: the repo by default, a temp folder in tests. */
const DIR = process.env['PARITY_DEMO_DIR'] ?? ROOT;
// The state persists, so a second demo resumes each client's value; the log is per run.
const STATE = join(DIR, 'state/demo-values.json');
const LOG = join(DIR, 'logs/demo-messages.log');
/** A free port unless PARITY_PORT says otherwise, so the demo runs beside a server on 7070. */
const PORT = process.env['PARITY_PORT'] ?? '0';
/** A client that has not exited this long after SIGINT (it waits 1 s for BYE) is killed. */
const CLIENT_STOP_MS = 3_000;
/** The server answers and flushes within its --shutdown-timeout-ms (3 s); this is a backstop. */
const SERVER_STOP_MS = 10_000;

const tty = process.stdout.isTTY === true;
const pretty = pinoPretty.prettyFactory({
  colorize: tty && pinoPretty.isColorSupported,
  translateTime: 'HH:MM:ss.l',
  ignore: 'pid,hostname,name',
  hideObject: true,
});
const COLORS = [36, 33, 35, 32]; // cyan, yellow, magenta, green
const WIDTH = Math.max(...IDS.map((id) => id.length), 'server'.length);

type Proc = { name: string; child: ChildProcess; exited: Promise<unknown>; last: number | null };

function label(name: string, index: number): string {
  const text = `${name.padEnd(WIDTH)} |`;
  return tty ? `\x1b[${COLORS[index % COLORS.length]}m${text}\x1b[0m` : text;
}

/** Spawns a bin with piped output; prints each line labelled; calls `onRecord` for JSON lines. */
function start(
  name: string,
  index: number,
  args: string[],
  onRecord: (r: LogRecord) => void,
): Proc {
  // detached: Ctrl-C in the terminal reaches only the demo, which then stops the others in order.
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
    detached: true,
  });
  const proc: Proc = { name, child, exited: once(child, 'exit'), last: null };
  const prefix = label(name, index);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let record: LogRecord | null = null;
    try {
      record = JSON.parse(line) as LogRecord;
    } catch {
      // not a log record: print it as it is
    }
    process.stdout.write(`${prefix} ${record ? pretty(record).trimEnd() : line}\n`);
    if (record) onRecord(record);
  });
  createInterface({ input: child.stderr! }).on('line', (line) =>
    process.stdout.write(`${prefix} ${line}\n`),
  );
  return proc;
}

/** Tracks a client's last value: the HELLO answer, each value sent, the value it exits with. */
function tracker(proc: () => Proc) {
  return (r: LogRecord) => {
    const match = /^VALUE (\d+)$/.exec(String(r['line']));
    if (match && (r['event'] === 'sent' || r['event'] === 'received'))
      proc().last = Number(match[1]);
    if (r['event'] === 'stopped' && typeof r['value'] === 'number') proc().last = r['value'];
  };
}

async function stop(proc: Proc, signal: NodeJS.Signals, ms: number): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), ms);
  await proc.exited;
  clearTimeout(timer);
}

/** Prints each client's last value, and whether the server's log of this run follows the rules. */
async function report(clients: Proc[]): Promise<void> {
  const text = await readFile(LOG, 'utf8').catch(() => '');
  const records = text.split('\n').flatMap((l) => (l === '' ? [] : [JSON.parse(l) as LogRecord]));
  const { switchMinMs: minMs, switchMaxMs: maxMs } = CLIENT_DEFAULTS;
  const audits = auditLog(records, { minMs, maxMs, earlyMs: 100, lateMs: 100, graceMs: 250 });
  process.stdout.write('\nlast values\n');
  for (const c of clients) {
    const mine = audits.filter((a) => a.id === c.name);
    const problems = mine.flatMap((a) => a.problems);
    const checked = `${mine.reduce((n, a) => n + a.values, 0)} values checked against the rules`;
    const verdict =
      problems.length === 0 ? `${checked}: all good` : `${checked}: ${problems.join('; ')}`;
    process.stdout.write(
      `  ${c.name.padEnd(WIDTH)} ${String(c.last ?? '-').padStart(2)}  (${verdict})\n`,
    );
  }
}

async function main(): Promise<number> {
  await rm(LOG, { force: true });
  let ready: (port: string) => void = () => {};
  const port = new Promise<string>((resolve) => (ready = resolve));
  const serverArgs = ['bin/server', '--port', PORT, '--state', STATE, '--log', LOG];
  const server = start('server', IDS.length, serverArgs, (r) => {
    if (String(r['msg']).startsWith('listening') && r['port'] !== undefined)
      ready(String(r['port']));
    if (typeof r['liveView'] === 'string')
      process.stdout.write(`\nlive view: ${r['liveView']}\n\n`);
  });
  const all = [server];
  // A second Ctrl-C, or the demo dying, must not leave detached children running.
  process.on('exit', () =>
    all.forEach((p) => p.child.exitCode === null && p.child.kill('SIGKILL')),
  );
  const listening = await Promise.race([port, server.exited.then(() => null)]);
  if (listening === null) return 1;
  const clients = IDS.map((id, i) => {
    const args = ['bin/client', '--id', id, '--port', listening];
    const proc: Proc = start(
      id,
      i,
      args,
      tracker(() => proc),
    );
    return proc;
  });
  all.push(...clients);
  const signal = await Promise.race([
    ...['SIGINT', 'SIGTERM'].map((s) => once(process, s).then(() => s)),
    server.exited.then(() => 'the server exited'),
  ]);
  process.once('SIGINT', () => process.exit(130));
  process.stdout.write(
    `\n${signal}: stopping the clients, then the server (Ctrl-C again to kill)\n`,
  );
  await Promise.all(clients.map((c) => stop(c, 'SIGINT', CLIENT_STOP_MS)));
  await stop(server, 'SIGTERM', SERVER_STOP_MS);
  await report(clients);
  return signal === 'the server exited' ? 1 : 0;
}

void main().then((code) => process.exit(code));
