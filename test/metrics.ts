import t from 'tap';
import { stat } from 'node:fs/promises';
import { LineClient, startTestServer } from './fixtures/server.js';
import { fetchText } from './http-events.js';
import { replyLabels } from '../src/monitor/metrics.js';

type Sample = { name: string; labels: Record<string, string>; value: number };

/** The Prometheus text format's samples (comments and blank lines skipped). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length !== 1)
    throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]!.value;
}

t.test('/metrics counts what the clients did', async (t) => {
  const { server, logPath } = await startTestServer(t, {
    http: { port: 0, required: true, maxViewers: 1 },
    limits: { maxClients: 2 },
  });
  const url = `${server.httpUrl}metrics`;
  const a = await LineClient.connect(t, server.port);
  t.same(await a.request('HELLO alice', 'VALUE 5', 'VALUE 5', 'PING'), [
    'VALUE 0',
    'OK 5',
    'OK 5',
    'PONG',
  ]);
  t.match(await a.request('EVEN', 'ODD', 'HELP', '<b>x</b>', 'VALUE 123'), [
    /^EVEN /,
    /^ODD /,
    /^HELP /,
    /^ERR UNKNOWN_COMMAND /,
    /^ERR BAD_ARGS /,
  ]);
  // A second connection takes alice over; a third is over --max-clients.
  const b = await LineClient.connect(t, server.port);
  t.same(await b.request('HELLO alice'), ['VALUE 5']);
  t.match(await a.readToEnd(), [/^BYE TAKEN_OVER /]);
  while (server.connections > 1) await new Promise((r) => setImmediate(r));
  const c = await LineClient.connect(t, server.port);
  const d = await LineClient.connect(t, server.port);
  t.match(await d.readToEnd(), [/^BYE SERVER_BUSY /]);
  t.same(await c.request('QUIT'), ['BYE']);
  await c.readToEnd();
  while (server.connections > 1) await new Promise((r) => setImmediate(r));

  const reply = await fetchText(url);
  t.equal(reply.status, 200);
  t.match(reply.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const m = parse(reply.body);
  t.ok(value(m, 'process_cpu_user_seconds_total') > 0, "prom-client's default process metrics");
  t.ok(m.some((s) => s.name === 'nodejs_eventloop_lag_seconds'));
  t.equal(value(m, 'parity_connections'), 1, 'b is still connected');
  t.equal(value(m, 'parity_ids'), 1);
  // `VALUE 123` is no request (BAD_ARGS): it counts as INVALID, like `<b>x</b>`.
  const requests = { HELLO: 2, VALUE: 2, EVEN: 1, ODD: 1, PING: 1, HELP: 1, QUIT: 1, INVALID: 2 };
  for (const [verb, n] of Object.entries(requests)) {
    t.equal(value(m, 'parity_requests_total', { verb }), n, `requests ${verb}`);
  }
  const replies: Array<[string, string, number]> = [
    ['VALUE', '', 2],
    ['OK', '', 2],
    ['PONG', '', 1],
    ['EVEN', '', 1],
    ['ODD', '', 1],
    ['HELP', '', 1],
    ['BYE', '', 1],
    ['BYE', 'TAKEN_OVER', 1],
    ['ERR', 'UNKNOWN_COMMAND', 1],
    ['ERR', 'BAD_ARGS', 1],
  ];
  for (const [kind, code, n] of replies) {
    t.equal(value(m, 'parity_replies_total', { kind, code }), n, `replies ${kind} ${code}`);
  }
  t.equal(value(m, 'parity_takeovers_total'), 1);
  t.equal(value(m, 'parity_refused_total', { reason: 'max-clients' }), 1);
  t.equal(value(m, 'parity_refused_total', { reason: 'max-clients-per-address' }), 0);
  // One value changed (alice 0 -> 5; the second VALUE 5 changed nothing); HELLO's syncs may
  // have written nothing new, so one commit or more.
  t.equal(value(m, 'parity_commit_batch_size_sum'), 1);
  const commits = value(m, 'parity_commit_duration_seconds_count');
  t.ok(commits >= 1, `${commits} commits`);
  t.equal(value(m, 'parity_commit_batch_size_count'), commits);
  t.equal(value(m, 'parity_commit_duration_seconds_bucket', { le: '+Inf' }), commits);
  t.ok(value(m, 'parity_commit_duration_seconds_sum') > 0);
  t.equal(value(m, 'parity_log_bytes_total'), server.monitor.logBytes);
  t.notOk(
    m.some((s) => Object.values(s.labels).some((v) => v.includes('alice'))),
    'no id is ever a label value',
  );
  b.socket.destroy();
  await server.close();
  t.equal(
    (await stat(logPath)).size,
    server.monitor.logBytes,
    'every byte counted reached the log',
  );
});

t.test('reply label values come from closed sets', async (t) => {
  t.same(replyLabels('ERR STORAGE'), { kind: 'ERR', code: 'STORAGE' });
  t.same(replyLabels('OK'), { kind: 'OK', code: '' });
  t.same(replyLabels('BYE'), { kind: 'BYE', code: '' });
  t.same(replyLabels('HELLO alice'), { kind: 'other', code: 'other' });
});

t.test('two servers in one process keep separate metrics', async (t) => {
  const http = { port: 0, required: true, maxViewers: 1 };
  const one = await startTestServer(t, { http });
  const two = await startTestServer(t, { http });
  const c = await LineClient.connect(t, one.port);
  await c.request('PING');
  const count = async (url: string | null) =>
    value(parse((await fetchText(`${url}metrics`)).body), 'parity_requests_total', {
      verb: 'PING',
    });
  t.equal(await count(one.server.httpUrl), 1);
  t.equal(await count(two.server.httpUrl), 0);
});
