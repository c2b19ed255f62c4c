import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { printLastValues } from './run/last-values.js';
import {
  firstSignal,
  killOnExit,
  startLabelled,
  stop,
  trackLastValue,
  type Proc,
} from './run/processes.js';

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

const WIDTH = Math.max(...IDS.map((id) => id.length), 'server'.length);
const node = { command: process.execPath, cwd: ROOT, width: WIDTH };

async function main(): Promise<number> {
  await rm(LOG, { force: true });
  let ready: (port: string) => void = () => {};
  const port = new Promise<string>((resolve) => (ready = resolve));
  const serverArgs = ['bin/server', '--port', PORT, '--state', STATE, '--log', LOG];
  const server = startLabelled({
    ...node,
    name: 'server',
    index: IDS.length,
    args: serverArgs,
    onLine: (_line, r) => {
      if (String(r?.['msg']).startsWith('listening') && r?.['port'] !== undefined)
        ready(String(r['port']));
      if (typeof r?.['liveView'] === 'string')
        process.stdout.write(`\nlive view: ${r['liveView']}\n\n`);
    },
  });
  const all = [server];
  killOnExit(all);
  const listening = await Promise.race([port, server.exited.then(() => null)]);
  if (listening === null) return 1;
  const clients = IDS.map((id, index) => {
    const proc: Proc = startLabelled({
      ...node,
      name: id,
      index,
      args: ['bin/client', '--id', id, '--port', listening],
      onLine: trackLastValue(() => proc),
    });
    return proc;
  });
  all.push(...clients);
  const signal = await Promise.race([
    firstSignal('SIGINT', 'SIGTERM'),
    server.exited.then(() => 'the server exited'),
  ]);
  process.once('SIGINT', () => process.exit(130));
  process.stdout.write(
    `\n${signal}: stopping the clients, then the server (Ctrl-C again to kill)\n`,
  );
  await Promise.all(clients.map((c) => stop(c, 'SIGINT', CLIENT_STOP_MS)));
  await stop(server, 'SIGTERM', SERVER_STOP_MS);
  await printLastValues(clients, [{ path: LOG }], WIDTH);
  return signal === 'the server exited' ? 1 : 0;
}

void main().then((code) => process.exit(code));
