import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** What `npm run cluster` runs besides Node, and how a newcomer on Debian or Ubuntu gets both. */
export const CLUSTER_TOOLS = ['redis-server', 'haproxy'] as const;
export type ClusterTool = (typeof CLUSTER_TOOLS)[number];
export const INSTALL_HINT = 'apt-get install redis-server haproxy';

/** Debian installs haproxy in /usr/sbin, which is not on a normal user's PATH: looked in too. */
const SBIN = ['/usr/local/sbin', '/usr/sbin'];

/** The executable `name` on `path` (a PATH value), then in the sbin folders; null if none. */
export function findTool(name: string, path: string, extra: readonly string[] = SBIN) {
  for (const dir of [...path.split(delimiter).filter((d) => d !== ''), ...extra]) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Where each tool is, or the one line that says what is missing and how to install it. */
export function findClusterTools(
  path: string,
  extra?: readonly string[],
): { found: Record<ClusterTool, string> } | { missing: string } {
  const found: Partial<Record<ClusterTool, string>> = {};
  const missing: string[] = [];
  for (const tool of CLUSTER_TOOLS) {
    const file = findTool(tool, path, extra);
    if (file === null) missing.push(tool);
    else found[tool] = file;
  }
  if (missing.length === 0) return { found: found as Record<ClusterTool, string> };
  return {
    missing: `npm run cluster needs ${missing.join(' and ')} (not found on PATH): ${INSTALL_HINT}`,
  };
}
