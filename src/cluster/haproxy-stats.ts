import { connect } from 'node:net';

/** One command on HAProxy's stats socket; it answers and closes. */
export async function statsCommand(path: string, command: string): Promise<string> {
  const socket = connect(path);
  socket.write(`${command}\n`);
  let out = '';
  for await (const chunk of socket) out += String(chunk);
  return out;
}

/** `show stat` as one record per proxy and server, by column name. */
export async function showStat(path: string): Promise<Array<Record<string, string>>> {
  const [head = '', ...rows] = (await statsCommand(path, 'show stat')).trim().split('\n');
  const columns = head.replace(/^# /, '').split(',');
  return rows.map((row) => {
    const cells = row.split(',');
    return Object.fromEntries(columns.map((c, i) => [c, cells[i] ?? '']));
  });
}

/** Whether every one of `servers` in `backend` is UP after a passed check (PING answered PONG). */
export const serversUp = (
  rows: Array<Record<string, string>>,
  backend: string,
  servers: readonly string[],
) =>
  servers.every((name) =>
    rows.some(
      (r) =>
        r['pxname'] === backend &&
        r['svname'] === name &&
        r['status'] === 'UP' &&
        r['check_status'] === 'L7OK',
    ),
  );

/**
 * Resolves true once `serversUp`, false if `gone` resolves first (HAProxy exited) or `timeoutMs`
 * passes. HAProxy has no event for it: ask, one stats round trip every `pollMs`.
 */
export async function untilServersUp(
  path: string,
  backend: string,
  servers: readonly string[],
  o: { timeoutMs: number; pollMs: number; gone: Promise<unknown> },
): Promise<boolean> {
  let over = false;
  void o.gone.then(() => (over = true));
  const timer = setTimeout(() => (over = true), o.timeoutMs);
  try {
    while (!over) {
      // Before HAProxy has made its socket, connecting fails: not up yet.
      const rows = await showStat(path).catch(() => []);
      if (serversUp(rows, backend, servers)) return true;
      await new Promise((resolve) => setTimeout(resolve, o.pollMs));
    }
    return false;
  } finally {
    clearTimeout(timer);
  }
}
