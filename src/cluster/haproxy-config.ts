/**
 * deploy/haproxy.cfg with only its addresses changed: the frontend's port, one `server` line per
 * Parity server (the file's first one repeated, renumbered), the stats socket's path. The test of
 * the file, `npm run cluster` and the cluster bench all run HAProxy on what this returns, so what
 * they show is what an operator installs.
 */
export type HaproxyPlaces = {
  frontendPort: number;
  /** Loopback ports of the Parity servers, in order. */
  serverPorts: number[];
  statsPath: string;
  /** Dropping root (chroot, user, group) needs root: without it, those lines are left out. */
  root: boolean;
};

export function renderHaproxyConfig(template: string, places: HaproxyPlaces): string {
  const out: string[] = [];
  let serversDone = false;
  for (const line of template.split('\n')) {
    if (!places.root && /^\s*(chroot|user|group)\s/.test(line)) continue;
    const server = /^(\s*server\s+)(\S+?)\d*(\s+)\S+(.*)$/.exec(line);
    if (server !== null) {
      if (serversDone) continue;
      serversDone = true;
      const [, head, name, gap, tail] = server;
      places.serverPorts.forEach((port, i) =>
        out.push(`${head}${name}${i + 1}${gap}127.0.0.1:${port}${tail}`),
      );
      continue;
    }
    out.push(
      line
        .replace(/^(\s*bind\s+)\S+/, `$1127.0.0.1:${places.frontendPort}`)
        .replace(/^(\s*stats socket\s+)\S+/, `$1${places.statsPath}`),
    );
  }
  return out.join('\n');
}
