/** What `npm run cluster` started and where, for the table it prints first. */
export type ClusterPlaces = {
  dir: string;
  /** Whether the folder outlives the run (PARITY_CLUSTER_DIR) or is removed at exit. */
  kept: boolean;
  redis: { pid: number; port: number; dir: string };
  servers: Array<{ name: string; pid: number; port: number; liveView: string; log: string }>;
  haproxy: { pid: number; port: number; statsPath: string; config: string };
  clients: Array<{ name: string; pid: number }>;
};

/** Rows of cells as lines, each column (but the last) padded to its widest cell. */
export function columns(rows: readonly string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

export function clusterTable(p: ClusterPlaces): string {
  const at = (port: number) => `127.0.0.1:${port}`;
  const rows = [
    [
      'redis',
      `pid ${p.redis.pid}`,
      at(p.redis.port),
      `folder ${p.redis.dir} (append-only, fsync always); redis-cli -p ${p.redis.port}`,
    ],
    ...p.servers.map((s) => [
      s.name,
      `pid ${s.pid}`,
      at(s.port),
      `live view ${s.liveView}  log ${s.log}  node ${s.name}`,
    ]),
    [
      'haproxy',
      `pid ${p.haproxy.pid}`,
      at(p.haproxy.port),
      `stats socket ${p.haproxy.statsPath}  config ${p.haproxy.config}`,
    ],
    ...p.clients.map((c) => [c.name, `pid ${c.pid}`, `-> ${at(p.haproxy.port)}`, 'bin/client']),
  ];
  const folder = p.kept
    ? `${p.dir} (PARITY_CLUSTER_DIR: kept, so a next run resumes the values)`
    : `${p.dir} (removed at exit; set PARITY_CLUSTER_DIR to keep one)`;
  return [
    '',
    `Redis, ${p.servers.length} Parity servers behind HAProxy, ${p.clients.length} clients; folder ${folder}`,
    '',
    ...columns(rows).map((line) => `  ${line}`),
    '',
    'Ctrl-C stops the clients, HAProxy, the servers, then Redis.',
    '',
  ].join('\n');
}
