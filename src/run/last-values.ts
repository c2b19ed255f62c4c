import { readFile } from 'node:fs/promises';
import { auditLogs, type ConnectionAudit, type LogRecord } from '../client/audit.js';
import { CLIENT_DEFAULTS } from '../client/defaults.js';
import type { Proc } from './processes.js';

/** A server's message log of this run; `node` names the server when there are several. */
export type ServerLog = { path: string; node?: string };

/** The records of one log (a missing log has none). */
async function readRecords(path: string): Promise<LogRecord[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').flatMap((l) => (l === '' ? [] : [JSON.parse(l) as LogRecord]));
}

/** Every connection of these logs, checked against the client rules and across servers. */
async function auditFiles(paths: readonly string[]): Promise<ConnectionAudit[]> {
  const { switchMinMs: minMs, switchMaxMs: maxMs } = CLIENT_DEFAULTS;
  const logs = await Promise.all(paths.map(readRecords));
  return auditLogs(logs, { minMs, maxMs, earlyMs: 100, lateMs: 100, graceMs: 250 });
}

/**
 * Prints each client's last value, and whether the servers' logs of this run follow the rules.
 * Connections are checked per log (connection numbers are per server), and each client's
 * connections across all of them: one that moved between servers must continue from its last OK.
 */
export async function printLastValues(
  clients: readonly Proc[],
  logs: readonly ServerLog[],
  width: number,
): Promise<void> {
  const all = await auditFiles(logs.map((log) => log.path));
  process.stdout.write('\nlast values\n');
  for (const c of clients) {
    const mine = all
      .filter((a) => a.id === c.name)
      .map((a) => ({ node: a.node ?? undefined, audit: a }));
    const problems = mine.flatMap((m) => m.audit.problems);
    const nodes = [...new Set(mine.flatMap((m) => (m.node === undefined ? [] : [m.node])))];
    const served = nodes.length === 0 ? '' : `on ${nodes.join(', ')}; `;
    const checked = `${mine.reduce((n, m) => n + m.audit.values, 0)} values checked against the rules`;
    const verdict =
      problems.length === 0 ? `${checked}: all good` : `${checked}: ${problems.join('; ')}`;
    process.stdout.write(
      `  ${c.name.padEnd(width)} ${String(c.last ?? '-').padStart(2)}  (${served}${verdict})\n`,
    );
  }
}
