/**
 * The Cluster and Scaling sections of BENCHMARKS.md, from bench/cluster.mjs's results: what each
 * topology held, what each kind of process spent per reply, and the model those costs give for
 * 100,000 and 1,000,000 clients. spliceClusterSections puts them into the report in place of the
 * previous ones, so the rest of the file (bench/run.mjs's) is left as it is.
 */
import { int, ms } from './format.mjs';

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

const c2 = (/** @type {number} */ x) => x.toFixed(2);
/** `a, b and c`. */
const andList = (/** @type {string[]} */ xs) =>
  xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`;
/** A modelled count, to two significant digits: the model is not more precise than that. */
const about = (/** @type {number} */ x) => {
  if (!Number.isFinite(x) || x <= 0) return int(x);
  const step = 10 ** Math.max(0, Math.floor(Math.log10(x)) - 1);
  return int(Math.round(x / step) * step);
};
/** CPU seconds per 1,000 replies, from cores and replies per second. */
const per1k = (/** @type {number} */ cores, /** @type {number} */ rps) =>
  rps > 0 ? (cores / rps) * 1000 : NaN;
const s3 = (/** @type {number} */ x) => (Number.isFinite(x) ? x.toFixed(3) : '–');

/** The largest passing step of a topology, or undefined. */
const atLimit = (/** @type {any} */ t) =>
  t.steps
    .filter((/** @type {any} */ s) => s.pass)
    .sort((/** @type {any} */ a, /** @type {any} */ b) => b.clients - a.clients)[0];

/** More CPU than this used by none of the measured processes: the step was disturbed. */
const DISTURBED_CORES = 0.3;

/**
 * Steps the model learns from: no errors, not collapsed (p99 under 1 s: a collapsed step's
 * replies/s includes a backlog being caught up), and not disturbed by other work.
 */
const usable = (/** @type {any} */ s) =>
  s.errors === 0 &&
  s.p99 !== null &&
  s.p99 < 1000 &&
  s.otherCpuCores <= DISTURBED_CORES &&
  s.repliesPerSec > 0;

/**
 * CPU of one process as a line in the replies per second it serves: `fixedCores` it spends at
 * any load (timers, health checks, Redis's fsync per event-loop turn) and `perReplyUs` for each
 * reply more. Least squares over the points; with fewer than two distinct loads, or a slope that
 * is not positive, the mean cost per reply at the busiest point and no fixed part.
 * @param {Array<[number, number]>} points [replies/s, cores] of one process
 */
export function fitLine(points) {
  if (points.length === 0) return null;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  const busiest = points.reduce((a, b) => (b[0] > a[0] ? b : a));
  const slope = sxx > 0 ? sxy / sxx : 0;
  if (n < 2 || slope <= 0 || my - slope * mx < 0)
    return { perReplyUs: (busiest[1] / busiest[0]) * 1e6, fixedCores: 0, n, maxRps: busiest[0] };
  return { perReplyUs: slope * 1e6, fixedCores: my - slope * mx, n, maxRps: busiest[0] };
}

/**
 * What one process of each kind costs, from every usable step: Parity on the Redis store (the
 * server that scales out; per process, each server's share of the replies), HAProxy, Redis, and
 * the generator (for comparison: it plays the clients, it is not deployed).
 * @param {any} results
 */
export function processCosts(results) {
  /** @type {Record<'parity' | 'parityFile' | 'haproxy' | 'redis' | 'generator', Array<[number, number]>>} */
  const points = { parity: [], parityFile: [], haproxy: [], redis: [], generator: [] };
  for (const t of results.topologies) {
    for (const s of t.steps.filter(usable)) {
      const r = s.repliesPerSec;
      if (t.topology.store === 'redis') {
        const n = t.topology.servers;
        points.parity.push([r / n, s.cores.parity / n]);
        points.redis.push([r, s.cores.redis]);
      } else points.parityFile.push([r, s.cores.parity]);
      if (t.topology.haproxy) points.haproxy.push([r, s.cores.haproxy]);
      points.generator.push([r, s.genCpuCores]);
    }
  }
  const costs = {
    parity: fitLine(points.parity),
    parityFile: fitLine(points.parityFile),
    haproxy: fitLine(points.haproxy),
    redis: fitLine(points.redis),
    generator: fitLine(points.generator),
  };
  return costs.parity && costs.haproxy && costs.redis ? costs : null;
}

/** Clients one process of this cost holds at PLANNING_UTILISATION of a core. */
export const clientsPerProcess = (/** @type {{ perReplyUs: number, fixedCores: number }} */ c) =>
  Math.max(0, PLANNING_UTILISATION - c.fixedCores) /
  ((c.perReplyUs / 1e6) * SPEC_REPLIES_PER_CLIENT);

/**
 * What N clients need at these costs.
 * @param {NonNullable<ReturnType<typeof processCosts>>} costs @param {number} clients
 */
export function plan(costs, clients) {
  const perServer = clientsPerProcess(costs.parity);
  const perHaproxyCore = clientsPerProcess(costs.haproxy);
  const perShard = clientsPerProcess(costs.redis);
  const servers = Math.ceil(clients / Math.min(perServer, SERVER_MAX_CLIENTS));
  return {
    clients,
    perServer,
    perHaproxyCore,
    perShard,
    /** One Node process is one core, and at most --max-clients clients. */
    servers,
    haproxyCores: Math.ceil(clients / perHaproxyCore),
    redisShards: Math.ceil(clients / perShard),
    haproxyFds: 2 * clients,
    haproxyMemoryGB: (clients * HAPROXY_BYTES_PER_CONN) / 1e9,
    /** Per server, from one balancer address: over EPHEMERAL_PORTS needs more source addresses. */
    connsPerServer: Math.ceil(clients / servers),
    requestsPerSec: clients * SPEC_REPLIES_PER_CLIENT,
  };
}

/**
 * @param {any} results bench/cluster.mjs's
 * @param {any} [reference] bench/run.mjs's results, to compare the single file-store server with
 */
export function clusterSections(results, reference = null) {
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
    `Spec clients as in "Spec clients" above, through HAProxy running deploy/haproxy.cfg with only its addresses changed (\`renderHaproxyConfig\`, as test/haproxy.ts runs it), started as \`haproxy -db -n ${int(meta.haproxyMaxConn)}\`: the file's \`maxconn 30000\` needs 60,029 descriptors and HAProxy refuses to start under this machine's hard limit of ${m.openFiles}, so \`-n\` caps it at what two descriptors per connection allow, and a step through it has at most ${int(Math.floor((meta.haproxyMaxConn - 50) / 250) * 250)} clients. Each Parity server runs with \`--proxy-protocol --no-http --node-name parityN\` and \`--max-clients\`/\`--max-clients-per-address\` 19,900; several servers are separate processes on their own ports, one \`server\` line each (as the file ships), not \`--workers\`. Redis is \`redis-server\` with \`--appendonly yes --appendfsync always\`, shared by the servers (\`--store redis://127.0.0.1:PORT/0\`). Every step starts everything afresh (Redis empty). HAProxy uses its default of one thread per core.`,
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
  const failures = failureKinds(topologies);
  if (failures.length > 0) {
    p();
    p(
      `A step fails on p99 over 100 ms or on any error. The errors in failing steps: ${failures.map(([kind, n]) => `${int(n)} × ${kind}`).join('; ')}.`,
    );
  }
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
      const kinds = failureKinds([{ steps: [s] }])
        .map(([k, v]) => `${int(v)} ${k.replace(/ \(.*$/, '')}`)
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
  md.push(...scalingSection(results, reference));
  return `${md.join('\n')}\n`;
}

/**
 * @param {any} results
 * @param {any} reference bench/run.mjs's results (the single-server report above), or null
 * @returns {string[]}
 */
function scalingSection(results, reference) {
  /** @type {string[]} */
  const md = [];
  const p = (/** @type {string} */ s = '') => md.push(s);
  p('## Scaling');
  p();
  const costs = processCosts(results);
  if (costs === null) {
    p('No Redis step in this run was usable (no errors, p99 under 1 s): no costs to scale from.');
    return md;
  }
  const cores = results.meta.machine.cores;
  const byKey = (/** @type {string} */ key) =>
    results.topologies.find((/** @type {any} */ t) => t.key === key);
  const redisRuns = ['redis-1', 'redis-2', 'redis-3'].map(byKey).filter(Boolean);
  if (redisRuns.length > 1) {
    const held = redisRuns.map((/** @type {any} */ t) => t.capacity);
    const first = redisRuns[0];
    const s1 = atLimit(first);
    const used = s1
      ? `at ${int(s1.clients)} clients with one server, Parity used ${c2(s1.cores.parity)} cores, HAProxy ${c2(s1.cores.haproxy)}, Redis ${c2(s1.cores.redis)}, the generator ${c2(s1.genCpuCores)} and the kernel's unattributed work ${c2(s1.otherCpuCores)}`
      : '';
    const floors = results.topologies
      .filter((/** @type {any} */ t) =>
        t.steps.some(
          (/** @type {any} */ s) =>
            !s.pass && s.clients > t.capacity && s.otherCpuCores > DISTURBED_CORES,
        ),
      )
      .map((/** @type {any} */ t) => t.label);
    p(
      `**On ${cores} cores the curve is flat.** Through HAProxy on one Redis, ${andList(redisRuns.map((/** @type {any} */ t) => String(t.topology.servers)))} servers held ${andList(held.map(int))} spec clients. Every process here (the servers, HAProxy, Redis, and the generator that plays the clients) shares the same ${cores} cores: ${used}. Another server adds no core, only another process competing for them, with its own fixed cost. So the model below is built from what each process spends, measured here, and not from these client counts.${floors.length > 0 ? ` (${floors.join('; ')}: a step above its figure failed with more than ${DISTURBED_CORES} cores going to other work even when measured again, so that figure is a floor.)` : ''}`,
    );
    p();
  }
  const direct = byKey('file-direct');
  const viaHaproxy = byKey('file-haproxy');
  const redis1 = byKey('redis-1');
  if (direct && viaHaproxy && redis1) {
    p(
      `On the same cores, one file-store server held ${int(direct.capacity)} clients direct, ${int(viaHaproxy.capacity)} through HAProxy (HAProxy's CPU came out of the same budget), and ${int(redis1.capacity)} on Redis: Parity itself spends about ${costs.parityFile ? (costs.parity.perReplyUs / costs.parityFile.perReplyUs).toFixed(1) : '–'} times the CPU per reply on the Redis store as on the file store (presumably a script call through ioredis per VALUE, against a journal record batched per commit; not profiled here), and Redis's own CPU comes on top.`,
    );
    p();
  }
  const rows = [
    ['Parity server, Redis store', '1 (Node)', costs.parity, 'clients per server'],
    ['HAProxy', 'one per core', costs.haproxy, 'clients per core'],
    ['Redis, appendfsync always', '1', costs.redis, 'clients per shard'],
  ];
  p(
    `What one process spends, fitted over every usable step of this run (no errors, p99 under 1 s, less than ${DISTURBED_CORES} cores of other CPU) as CPU = fixed + per reply × replies/s:`,
  );
  p();
  p(
    '| process | threads | fixed, cores | CPU per reply | CPU s per 1,000 replies | steps | holds at 75% of a core |',
  );
  p('| --- | --- | --- | --- | --- | --- | --- |');
  for (const [name, threads, c, unit] of /** @type {Array<[string, string, any, string]>} */ (
    rows
  )) {
    p(
      `| ${name} | ${threads} | ${c2(c.fixedCores)} | ${c.perReplyUs.toFixed(1)} µs | ${s3(c.perReplyUs / 1000)} | ${c.n} | ≈ ${about(clientsPerProcess(c))} ${unit} |`,
    );
  }
  for (const [name, c] of /** @type {Array<[string, any]>} */ ([
    ['Parity server, file store (for comparison)', costs.parityFile],
    ['the generator (the clients; for comparison)', costs.generator],
  ])) {
    if (c)
      p(
        `| ${name} | 1 each | ${c2(c.fixedCores)} | ${c.perReplyUs.toFixed(1)} µs | ${s3(c.perReplyUs / 1000)} | ${c.n} | – |`,
      );
  }
  p();
  p(
    `A process holds (${PLANNING_UTILISATION} − fixed) / (per reply × ${SPEC_REPLIES_PER_CLIENT} replies per client per second) clients. ${PLANNING_UTILISATION * 100}% of a core is the planning share: the file store's server passed at 0.9 of its core only with nothing else wanting it, and every client ticks on the same 500 ms grid, so a process needs room for bursts. Servers are whole processes (one Node thread each), at most ${int(SERVER_MAX_CLIENTS)} clients each at the default \`--max-clients\`.`,
  );
  p();
  p(
    '| clients | requests/s | Parity servers | HAProxy cores | Redis shards | HAProxy descriptors, memory | connections per server |',
  );
  p('| --- | --- | --- | --- | --- | --- | --- |');
  for (const n of MODEL_CLIENTS) {
    const x = plan(costs, n);
    p(
      `| ${int(n)} | ${int(x.requestsPerSec)} | ${int(x.servers)} | ${int(x.haproxyCores)} | ${int(x.redisShards)} | ${int(x.haproxyFds)}, ${x.haproxyMemoryGB.toFixed(1)} GB | ${int(x.connsPerServer)} |`,
    );
  }
  p();
  const big = plan(costs, MODEL_CLIENTS[MODEL_CLIENTS.length - 1] ?? 1_000_000);
  p('How far to trust it:');
  p();
  const refSpec = reference?.rows?.find((/** @type {any} */ r) => r.key === 'spec-capacity');
  const dStep = direct ? atLimit(direct) : undefined;
  const refStep = refSpec?.detail?.parity?.find(
    (/** @type {any} */ s) => dStep && s.clients === dStep.clients,
  );
  if (dStep && refStep) {
    const us = (/** @type {number} */ c, /** @type {number} */ r) => ((c / r) * 1e6).toFixed(0);
    p(
      `- **This machine was slower than in the single-server report above.** The file-store server held ${int(direct.capacity)} clients direct here, against ${int(refSpec.parity)} there (${reference.meta.machine.commit}, ${reference.meta.date.slice(0, 10)}). At ${int(dStep.clients)} clients it spent ${us(dStep.cores.parity, dStep.repliesPerSec)} µs per reply against ${us(refStep.serverCpuCores, refStep.repliesPerSec)} µs there; the server has changed since (the journal commit path), but the generator has not, and it spent ${us(dStep.genCpuCores, dStep.repliesPerSec)} µs per reply against ${us(refStep.genCpuCores, refStep.repliesPerSec)}. Other sessions ran tests on this shared machine all through the run (see each step's load average), which is the likely reason the same work took more CPU even in windows where little CPU went to anything else: a virtual machine's neighbours do not show as its own CPU. Every figure here, the model's included, is on the slow side by about that ratio; the comparisons within this run hold.`,
    );
  }
  const redisLoads = results.topologies
    .filter((/** @type {any} */ t) => t.topology.store === 'redis')
    .flatMap((/** @type {any} */ t) => t.steps.filter(usable));
  const least = redisLoads.reduce((/** @type {any} */ a, /** @type {any} */ b) =>
    b.repliesPerSec < a.repliesPerSec ? b : a,
  );
  const most = redisLoads.reduce((/** @type {any} */ a, /** @type {any} */ b) =>
    b.repliesPerSec > a.repliesPerSec ? b : a,
  );
  p(
    `- **Costs per reply fall with load.** The fixed part above is one reason; batching is the other: Redis fsyncs once per event-loop turn, so a busier Redis puts more writes in each fsync (its CPU went from ${c2(least.cores.redis)} to ${c2(most.cores.redis)} cores while its replies/s went from ${int(least.repliesPerSec)} to ${int(most.repliesPerSec)}). The fits reach only ${int(costs.parity.maxRps)} replies/s per server and ${int(costs.redis.maxRps)} per Redis; a process given a core of its own serves more, each reply for less, so the servers, cores and shards counted above lean high.`,
  );
  p();
  p('**Where the next limit is:**');
  p();
  p(
    `- **One Redis, today.** The store talks to one Redis URL and counts \`--max-ids\` with DBSIZE on it, so however many servers stand behind HAProxy, the cluster holds what one Redis thread does: about ${about(big.perShard)} spec clients at 75% of its core by the fit above (its commands, Parity's Lua scripts, and with \`appendfsync always\` the fsync, all on one thread; the time it waits for each fsync is not CPU time and is not counted, and p99 carries it). Past that, shards: the keys are already one hash tag per id (\`parity:{id}\`) and every script touches one key, so Redis Cluster could hold them, but the store needs a cluster client, an id limit that is not one node's DBSIZE, and a takeover channel that reaches every node (Redis 7's sharded pub/sub); each shard then wants its own disk for its fsyncs (${int(atLimit(redis1 ?? { steps: [] })?.writeBytesPerReply?.redis)} bytes written per reply here).`,
  );
  p(
    `- **Then HAProxy.** By CPU, ≈ ${about(big.perHaproxyCore)} clients per core here (every request and reply crosses it twice, as small packets); by connections, two descriptors and about 33 kB (two 16 kB buffers) per client: ${int(big.haproxyFds)} descriptors and ${big.haproxyMemoryGB.toFixed(0)} GB for ${int(big.clients)} clients. And one balancer address can open at most ${int(EPHEMERAL_PORTS)} connections to one server address and port (Linux's ephemeral ports, 32768-60999 here): ${int(big.connsPerServer)} per server ${big.connsPerServer > EPHEMERAL_PORTS ? 'needs several source addresses or balancers' : 'fits'}. Several balancers, behind DNS or an L4 load balancer, spread all three.`,
  );
  p(
    `- **The network.** ${int(big.requestsPerSec)} requests a second is as many small packets each way at the balancers, and again between them and the servers; a request is about 10 bytes, so packet rate, not bandwidth, is what NICs and kernels run out of.`,
  );
  p(
    `- **Parity servers scale out.** They share nothing but Redis: ${int(big.servers)} of them for ${int(big.clients)} clients is many processes, not a new limit.`,
  );
  return md;
}

/** What each kind of error in a failing step means, by the generator's name for it. */
const ERROR_KINDS = [
  {
    match: /^server closed/,
    kind: '"server closed" (through HAProxy: the balancer closed the client, most likely because it could not connect it to a server short of CPU and slow to accept within `timeout connect 5s` and 3 retries)',
  },
  {
    match: /^reply ERR STORAGE/,
    kind: '`ERR STORAGE` (the Redis store gave up on a write, most likely at its 2 s store timeout while the machine was overloaded; that write was not acknowledged)',
  },
  { match: /not all answered within/, kind: 'not all clients connected within the time limit' },
  { match: /^unanswered/, kind: 'requests still unanswered when the step ended' },
];

/**
 * The errors of failing steps, summed by what they mean.
 * @param {any[]} topologies @returns {Array<[string, number]>}
 */
function failureKinds(topologies) {
  /** @type {Map<string, number>} */
  const sums = new Map();
  for (const t of topologies)
    for (const s of t.steps)
      for (const [name, n] of Object.entries(s.errorKinds ?? {})) {
        const kind = ERROR_KINDS.find((k) => k.match.test(name))?.kind ?? `"${name}"`;
        sums.set(kind, (sums.get(kind) ?? 0) + /** @type {number} */ (n));
      }
  return [...sums].sort((a, b) => b[1] - a[1]);
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
