/**
 * The Cluster and Scaling sections of BENCHMARKS.md, from bench/cluster.mjs's results: what each
 * topology held, what each kind of process spent per reply, and the model those costs give for
 * 100,000 and 1,000,000 clients. spliceClusterSections puts them into the report in place of the
 * previous ones, so the rest of the file (bench/run.mjs's) is left as it is.
 */

/** Replies per second a spec client asks for: VALUE every 500 ms, EVEN/ODD every 3-5 s (4 s). */
export const SPEC_REPLIES_PER_CLIENT = 2 + 1 / 4;
/**
 * The share of a core the model lets each process use. A Node server is one thread; at its limit
 * here the file store's server used about 0.9 of a core with p99 under 100 ms, with no core to
 * spare for anything else. 0.75 leaves room for bursts (every client of a process ticks on the
 * same 500 ms grid) and for the kernel's network work, which no process is charged for.
 */
export const PLANNING_UTILISATION = 0.75;
/** Client counts the model answers for (issue 13). */
export const MODEL_CLIENTS = [100_000, 1_000_000];
/** Parity's default --max-clients: one server process holds at most this many unless raised. */
const SERVER_MAX_CLIENTS = 10_000;
/** Connections from one source address to one server address and port: Linux's ephemeral range. */
const EPHEMERAL_PORTS = 60_999 - 32_768 + 1;
/** Memory per HAProxy connection with its default 16 kB buffers (deploy/haproxy.cfg's figure). */
const HAPROXY_BYTES_PER_CONN = 33_000;

const KINDS = /** @type {const} */ (['parity', 'haproxy', 'redis']);

const int = (/** @type {number | null | undefined} */ x) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '–'
    : Math.round(x).toLocaleString('en-US');
const ms = (/** @type {number | null | undefined} */ x) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '–'
    : x < 10
      ? x.toFixed(2)
      : x < 1000
        ? x.toFixed(1)
        : int(x);
const c2 = (/** @type {number} */ x) => x.toFixed(2);
/** CPU seconds per 1,000 replies, from cores and replies per second. */
const per1k = (/** @type {number} */ cores, /** @type {number} */ rps) =>
  rps > 0 ? (cores / rps) * 1000 : NaN;
const s3 = (/** @type {number} */ x) => (Number.isFinite(x) ? x.toFixed(3) : '–');

/** The largest passing step of a topology, or undefined. */
const atLimit = (/** @type {any} */ t) =>
  t.steps
    .filter((/** @type {any} */ s) => s.pass)
    .sort((/** @type {any} */ a, /** @type {any} */ b) => b.clients - a.clients)[0];

/**
 * The per-reply costs the model uses: for each kind, at the passing Redis step with the most
 * replies per second (the most loaded Redis and HAProxy seen, and servers with the most clients).
 * @param {any} results
 */
export function modelCosts(results) {
  const candidates = results.topologies
    .filter((/** @type {any} */ t) => t.topology.store === 'redis')
    .flatMap((/** @type {any} */ t) =>
      t.steps.filter((/** @type {any} */ s) => s.pass).map((/** @type {any} */ s) => ({ t, s })),
    );
  if (candidates.length === 0) return null;
  const { t, s } = candidates.reduce((/** @type {any} */ a, /** @type {any} */ b) =>
    b.s.repliesPerSec > a.s.repliesPerSec ? b : a,
  );
  /** @type {Record<string, number>} µs of CPU per reply */
  const us = {};
  for (const kind of KINDS) us[kind] = (s.cores[kind] / s.repliesPerSec) * 1e6;
  us.generator = (s.genCpuCores / s.repliesPerSec) * 1e6;
  return {
    topology: t.key,
    label: t.label,
    step: s,
    us,
    repliesPerClient: s.repliesPerSec / s.clients,
  };
}

/**
 * What N clients need if each kind's cost per reply holds: processes or cores of each kind.
 * @param {{ us: Record<string, number> }} costs @param {number} clients
 */
export function plan(costs, clients) {
  const perCore = (/** @type {number} */ us) =>
    (PLANNING_UTILISATION * 1e6) / (us * SPEC_REPLIES_PER_CLIENT);
  const parityPerCore = perCore(/** @type {number} */ (costs.us.parity));
  const haproxyPerCore = perCore(/** @type {number} */ (costs.us.haproxy));
  const redisPerShard = perCore(/** @type {number} */ (costs.us.redis));
  const servers = Math.ceil(clients / Math.min(parityPerCore, SERVER_MAX_CLIENTS));
  return {
    clients,
    parityPerCore,
    haproxyPerCore,
    redisPerShard,
    /** One Node process is one core; and at most --max-clients each. */
    servers,
    serverCores: Math.ceil(clients / parityPerCore),
    haproxyCores: Math.ceil(clients / haproxyPerCore),
    redisShards: Math.ceil(clients / redisPerShard),
    haproxyFds: 2 * clients,
    haproxyMemoryGB: (clients * HAPROXY_BYTES_PER_CONN) / 1e9,
    /** Per server, from one balancer address: over EPHEMERAL_PORTS needs more source addresses. */
    connsPerServer: Math.ceil(clients / servers),
    requestsPerSec: clients * SPEC_REPLIES_PER_CLIENT,
  };
}

/** @param {any} results */
export function clusterSections(results) {
  const { meta, topologies } = results;
  const m = meta.machine;
  /** @type {string[]} */
  const md = [];
  const p = (/** @type {string} */ s = '') => md.push(s);
  p('## Cluster');
  p();
  p(
    `Generated by \`${meta.command}\` (bench/cluster.mjs, \`--${meta.mode}\`) on ${meta.date.slice(0, 10)} in ${meta.elapsedS} s, Parity at ${m.commit}, on the machine above (${m.cores} cores). Do not edit: rerun it with \`--publish\`, which replaces only this section and the next.`,
  );
  p();
  p(
    `\`uptime\` at the start: \`${meta.uptimeAtStart}\`${meta.uptimeAtEnd ? `; at the end: \`${meta.uptimeAtEnd}\`` : ''}. Each step's load average (1 min, read before its processes started) and the machine's busy share in the second before it are in the steps table.`,
  );
  p();
  p(
    `Spec clients as in "Spec clients" above, through HAProxy running deploy/haproxy.cfg with only its addresses changed (\`renderHaproxyConfig\`, as \`npm run cluster\` and test/haproxy.ts use it), started as \`haproxy -db -n ${int(meta.haproxyMaxConn)}\`: the file's \`maxconn 30000\` needs 60,029 descriptors and HAProxy refuses to start under this machine's hard limit of ${m.openFiles}, so \`-n\` caps it at what two descriptors per connection allow, and a step through it has at most ${int(Math.floor((meta.haproxyMaxConn - 50) / 250) * 250)} clients. Each Parity server runs with \`--proxy-protocol --no-http --node-name parityN\` and \`--max-clients\`/\`--max-clients-per-address\` 19,900; several servers are separate processes on their own ports, one \`server\` line each (as the file ships), not \`--workers\`. Redis is \`redis-server\` with \`--appendonly yes --appendfsync always\`, shared by the servers (\`--store redis://127.0.0.1:PORT/0\`). Every step starts everything afresh (Redis empty). HAProxy uses its default of one thread per core.`,
  );
  p();
  p(
    '| topology | spec clients at p99 ≤ 100 ms, 0 errors | p99 there | replies/s | Parity cores (busiest process) | HAProxy cores | Redis cores | generator cores | other cores |',
  );
  p('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const t of topologies) {
    const s = atLimit(t);
    const held = t.limited
      ? t.ceiling !== null && t.capacity >= t.ceiling
        ? `≥ ${int(t.capacity)} (HAProxy's descriptors)`
        : `≥ ${int(t.capacity)} (largest step)`
      : int(t.capacity);
    if (s === undefined) {
      p(`| ${t.label} | ${held} | – | – | – | – | – | – | – |`);
      continue;
    }
    p(
      `| ${t.label} | ${held} | ${ms(s.p99)} ms | ${int(s.repliesPerSec)} | ${c2(s.cores.parity)} (${c2(s.parityMaxCores)}) | ${t.topology.haproxy ? c2(s.cores.haproxy) : '–'} | ${t.topology.store === 'redis' ? c2(s.cores.redis) : '–'} | ${c2(s.genCpuCores)} | ${c2(s.otherCpuCores)} |`,
    );
  }
  p();
  p(
    'Cores are CPU over the measuring window at the largest passing step (1.00 = one core busy). "Other" is CPU charged to none of these processes: the kernel\'s loopback work in softirq context (twice as much through HAProxy: every byte crosses two connections), its writeback of fsynced files, or other work on the machine.',
  );
  p();
  p('### CPU per reply');
  p();
  p(
    "CPU seconds per 1,000 replies (0.030 s per 1,000 replies is 30 µs per reply) at each topology's largest passing step, by kind of process, and bytes written to disk per reply (/proc/<pid>/io write_bytes: Parity's message log and, on the file store, its journal; Redis's append-only file).",
  );
  p();
  p(
    '| topology | at | Parity | HAProxy | Redis | generator | Parity bytes written / reply | Redis bytes written / reply |',
  );
  p('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const t of topologies) {
    const s = atLimit(t);
    if (s === undefined) continue;
    const r = s.repliesPerSec;
    p(
      `| ${t.label} | ${int(s.clients)} clients | ${s3(per1k(s.cores.parity, r))} | ${t.topology.haproxy ? s3(per1k(s.cores.haproxy, r)) : '–'} | ${t.topology.store === 'redis' ? s3(per1k(s.cores.redis, r)) : '–'} | ${s3(per1k(s.genCpuCores, r))} | ${int(s.writeBytesPerReply.parity)} | ${t.topology.store === 'redis' ? int(s.writeBytesPerReply.redis) : '–'} |`,
    );
  }
  p();
  p('### Every step');
  p();
  p(
    '| topology | clients | p50 ms | p99 ms | p999 ms | errors | replies/s | Parity cores (busiest) | HAProxy | Redis | generator | other | busy before | load avg | clients per server | result |',
  );
  p(
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const t of topologies) {
    for (const s of t.steps) {
      const kinds = Object.entries(s.errorKinds ?? {})
        .map(([k, v]) => `${v} ${k}`)
        .join('; ');
      const spread = s.clientsPerServer
        ? Object.values(s.clientsPerServer).map(int).join(' / ')
        : '–';
      p(
        `| ${t.key} | ${int(s.clients)} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.p999)} | ${s.errors}${kinds ? ` (${kinds.slice(0, 60)})` : ''} | ${int(s.repliesPerSec)} | ${c2(s.cores.parity)} (${c2(s.parityMaxCores)}) | ${c2(s.cores.haproxy)} | ${c2(s.cores.redis)} | ${c2(s.genCpuCores)} | ${c2(s.otherCpuCores)} | ${s.busyBefore === null ? '–' : `${Math.round(s.busyBefore * 100)}%`} | ${s.loadAverage[0]} | ${spread} | ${s.pass ? 'pass' : 'fail'}${s.retried ? ' (2nd try)' : ''} |`,
      );
    }
  }
  p();
  md.push(...scalingSection(results));
  return `${md.join('\n')}\n`;
}

/** @param {any} results @returns {string[]} */
function scalingSection(results) {
  /** @type {string[]} */
  const md = [];
  const p = (/** @type {string} */ s = '') => md.push(s);
  p('## Scaling');
  p();
  const costs = modelCosts(results);
  if (costs === null) {
    p('No Redis step passed in this run: no per-reply costs to scale from.');
    return md;
  }
  const cap = (/** @type {string} */ key) =>
    results.topologies.find((/** @type {any} */ t) => t.key === key)?.capacity;
  const [r1, r2, r3] = ['redis-1', 'redis-2', 'redis-3'].map(cap);
  p(
    `**On this machine the curve is flat.** Redis with 1, 2 and 3 servers held ${int(r1)}, ${int(r2)} and ${int(r3)} spec clients: every process (the servers, HAProxy, Redis, and the generator playing the clients) runs on the same ${results.meta.machine.cores} cores, so another server adds no CPU, only another process competing for it. What does carry over to a real deployment is what each process spends per reply, and so the model below is built from those per-process costs, not from the client counts above.`,
  );
  p();
  const s = costs.step;
  p(
    `Costs used: the passing Redis step with the most replies per second (${costs.label}, ${int(s.clients)} clients, ${int(s.repliesPerSec)} replies/s, ${costs.repliesPerClient.toFixed(2)} per client per second against the spec's ${SPEC_REPLIES_PER_CLIENT}):`,
  );
  p();
  p('| process | threads | CPU per reply | CPU s per 1,000 replies | clients per core at 75% |');
  p('| --- | --- | --- | --- | --- |');
  const first = plan(costs, MODEL_CLIENTS[0] ?? 100_000);
  p(
    `| Parity server | 1 (Node event loop) | ${costs.us.parity?.toFixed(1)} µs | ${s3((costs.us.parity ?? NaN) / 1000)} | ${int(first.parityPerCore)} |`,
  );
  p(
    `| HAProxy | one per core | ${costs.us.haproxy?.toFixed(1)} µs | ${s3((costs.us.haproxy ?? NaN) / 1000)} | ${int(first.haproxyPerCore)} |`,
  );
  p(
    `| Redis (appendfsync always) | 1 (commands, scripts, the fsync) | ${costs.us.redis?.toFixed(1)} µs | ${s3((costs.us.redis ?? NaN) / 1000)} | ${int(first.redisPerShard)} per shard |`,
  );
  p(
    `| load generator (the clients) | – | ${costs.us.generator?.toFixed(1)} µs | ${s3((costs.us.generator ?? NaN) / 1000)} | – |`,
  );
  p();
  p(
    `Clients per core = ${PLANNING_UTILISATION} × 1,000,000 µs / (µs per reply × ${SPEC_REPLIES_PER_CLIENT} replies per client per second). ${PLANNING_UTILISATION * 100}% is the planning share of a core: the file store's server held its limit at about 0.9 of one core with no core to spare, and the spec's clients all tick on the same 500 ms grid, so a process needs headroom for bursts.`,
  );
  p();
  p(
    '| clients | requests/s | Parity servers (cores) | HAProxy cores | Redis shards | HAProxy descriptors, memory | connections per server |',
  );
  p('| --- | --- | --- | --- | --- | --- | --- |');
  for (const n of MODEL_CLIENTS) {
    const x = plan(costs, n);
    p(
      `| ${int(n)} | ${int(x.requestsPerSec)} | ${int(x.servers)} (${int(x.serverCores)} by CPU) | ${int(x.haproxyCores)} | ${int(x.redisShards)} | ${int(x.haproxyFds)}, ${x.haproxyMemoryGB.toFixed(1)} GB | ${int(x.connsPerServer)} |`,
    );
  }
  p();
  const big = plan(costs, MODEL_CLIENTS[MODEL_CLIENTS.length - 1] ?? 1_000_000);
  p(
    `Servers are whole processes of one core each, and at most ${int(SERVER_MAX_CLIENTS)} clients each at Parity's default \`--max-clients\` (raise it with the open-file limit) — whichever needs more. One HAProxy process uses all cores of its machine; from one balancer address it can open at most ${int(EPHEMERAL_PORTS)} connections to one server address and port (Linux's ephemeral ports, 32768-60999 here), so ${int(big.connsPerServer)} connections per server ${big.connsPerServer > EPHEMERAL_PORTS ? 'would need several source addresses (`source` on the server lines) or more balancers' : 'fit'}.`,
  );
  p();
  p('**Where the next limit is:**');
  p();
  p(
    `- **Redis first.** It runs commands, Parity's Lua scripts and, with \`appendfsync always\`, the fsync on one thread: ${int(first.redisPerShard)} clients per shard by CPU, and fewer in practice, because the time its thread waits for each fsync is not CPU time and is not in these figures (it writes and fsyncs once per event-loop turn, so a busier shard fsyncs larger batches, not more often; p99 then carries one fsync). Past one shard, the store must change: it talks to one Redis URL, and \`--max-ids\` is counted with DBSIZE on it. Its keys are already one hash tag per id (\`parity:{id}\`) and every script touches one key, so Redis Cluster could hold them, but the store needs a cluster client, a limit on ids that is not one node's DBSIZE, and a takeover channel that reaches every node (Redis 7's sharded pub/sub).`,
  );
  p(
    `- **Then HAProxy's connections, not its CPU.** Two descriptors and about 33 kB per client: ${int(big.haproxyFds)} descriptors and ${big.haproxyMemoryGB.toFixed(0)} GB for ${int(big.clients)} clients, and the ephemeral-port bound above per server. Several balancers (DNS or an L4 load balancer in front) spread that.`,
  );
  p(
    `- **The network.** ${int(big.requestsPerSec)} requests per second is as many small packets each way at the balancer, and again between it and the servers: packet rate, not bandwidth (a request is ~10 bytes, a reply ~6), is what a NIC and kernel run out of first.`,
  );
  p(
    `- **Disk, per server.** Each reply is also a message-log record on its server (the bytes written per reply above): spread over many servers, each writes little.`,
  );
  return md;
}

/** The headings of the sections this module writes, in order. */
const OWN = ['## Cluster', '## Scaling'];

/**
 * `md` with its Cluster and Scaling sections replaced by `sections` (or `sections` appended, if it
 * has none): from the `## Cluster` heading to the next `## ` heading that is not one of them.
 * @param {string} md @param {string} sections
 */
export function spliceClusterSections(md, sections) {
  const lines = md.replace(/\n*$/, '').split('\n');
  const start = lines.findIndex((l) => l === OWN[0]);
  if (start === -1) return `${lines.join('\n')}\n\n${sections}`;
  let end = start + 1;
  while (end < lines.length && !(lines[end]?.startsWith('## ') && !OWN.includes(lines[end] ?? '')))
    end++;
  const rest = lines.slice(end);
  return `${[...lines.slice(0, start), ...sections.replace(/\n$/, '').split('\n'), ...(rest.length ? ['', ...rest] : [])].join('\n')}\n`;
}
