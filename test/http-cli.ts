import t from 'tap';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { pathArgs, runToExit, SERVER_BIN, startChild } from './fixtures/child.js';
import { LineClient, startTestServer, tempDir } from './fixtures/server.js';
import { fetchText } from './http-events.js';
import { httpServerOptions } from '../src/cli/http-options.js';
import { HTTP_DEFAULTS } from '../src/monitor/defaults.js';
import { startSummary } from '../src/monitor/summary.js';

// Five tests start bin/server; on a loaded 2-core machine that passes tap's 30 s default.
t.setTimeout(90_000);

const paths = (t: Parameters<typeof tempDir>[0]) => {
  const dir = tempDir(t);
  return pathArgs(`${dir}/state.json`, `${dir}/messages.log`);
};

t.test('flags map to the http option: default, explicit, off', async (t) => {
  const base = { http: true, 'http-max-viewers': 20 };
  t.same(httpServerOptions(base), {
    http: { port: HTTP_DEFAULTS.httpPort, required: false, maxViewers: 20 },
  });
  t.same(httpServerOptions({ ...base, 'http-port': 0 }), {
    http: { port: 0, required: true, maxViewers: 20 },
  });
  t.same(httpServerOptions({ ...base, http: false, 'http-port': 9 }), { http: null });
});

t.test('bin/server: the live view URL right after the ready line', async (t) => {
  const s = await startChild(t, ['--http-port', '0', ...paths(t)]);
  const view = await s.waitForOutput('live view at');
  t.match(s.output[0]!.msg, /^listening on /, 'the ready line stays first');
  t.equal((await fetchText(`${String(view.liveView)}healthz`)).status, 200);
  await s.kill();
});

t.test('bin/server --no-http, and PARITY_HTTP_PORT', async (t) => {
  const off = await startChild(t, ['--no-http', ...paths(t)]);
  await off.kill();
  t.notOk(
    off.output.some((r) => /live view|HTTP port/.test(String(r.msg))),
    'no HTTP side, no word of it',
  );
  const holder = createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.teardown(() => holder.close());
  const port = (holder.address() as { port: number }).port;
  process.env.PARITY_HTTP_PORT = String(port);
  t.teardown(() => delete process.env.PARITY_HTTP_PORT);
  const taken = await runToExit(['--http', ...paths(t)]); // --http: the fixture's default is none
  t.equal(taken.code, 1, 'a port given in the environment is asked for: taken is an error');
  t.match(taken.stderr, new RegExp(`cannot start: HTTP port ${port}: .*EADDRINUSE`));
});

t.test('bin/server: bad HTTP flags are usage errors', async (t) => {
  for (const args of [
    ['--http-port', '70000'],
    ['--http-port', '-1'],
    ['--http-max-viewers', '0'],
  ]) {
    const r = await runToExit([...args, ...paths(t)]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, /invalid --http-(port|max-viewers) \S+: use an integer/);
  }
  const help = spawnSync(process.execPath, [SERVER_BIN, '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  for (const flag of ['--http-port', '--no-http', '--http-max-viewers']) t.match(help.stdout, flag);
});

t.test('the console summary: one line per period while clients are connected', async (t) => {
  const { server } = await startTestServer(t);
  const records: Array<Record<string, unknown>> = [];
  let wake = () => {};
  const logger = pino({}, { write: (s: string) => (records.push(JSON.parse(s)), wake()) });
  const c = await LineClient.connect(t, server.port);
  await c.request('HELLO erin', 'VALUE 1');
  // Started once a commit is done: a period that ended before it would rightly say "p99 - ms".
  const stop = startSummary(server.monitor, logger, 20);
  t.teardown(stop);
  while (records.length === 0) await new Promise<void>((r) => (wake = r));
  t.match(records[0], {
    msg: /^summary: 1 connections, [\d.]+ requests\/s, commit p99 [\d.]+ ms$/,
    connections: 1,
  });
});
