import { readFile } from 'node:fs/promises';
import { auditLog, type ConnectionAudit, type LogRecord } from '../client/audit.js';
import { CLIENT_DEFAULTS } from '../client/defaults.js';
import type { Proc } from './processes.js';

/** A server's message log of this run; `node` names the server when there are several. */
export type ServerLog = { path: string; node?: string };

/** Each connection of one log, checked against the client rules (a missing log has none). */
async function auditFile(path: string): Promise<ConnectionAudit[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const records = text.split('\n').flatMap((l) => (l === '' ? [] : [JSON.parse(l) as LogRecord]));
  const { switchMinMs: minMs, switchMaxMs: maxMs } = CLIENT_DEFAULTS;
  return auditLog(records, { minMs, maxMs, earlyMs: 100, lateMs: 100, graceMs: 250 });
}

/**
 * Prints each client's last value, and whether the servers' logs of this run follow the rules.
 * Each log is audited alone: connection numbers are per server.
 */
export async function printLastValues(
  clients: readonly Proc[],
  logs: readonly ServerLog[],
  width: number,
): Promise<void> {
  const audits = await Promise.all(
    logs.map(async (log) => ({ log, audits: await auditFile(log.path) })),
  );
  process.stdout.write('\nlast values\n');
  for (const c of clients) {
    const mine = audits.flatMap(({ log, audits }) =>
      audits.filter((a) => a.id === c.name).map((a) => ({ node: log.node, audit: a })),
    );
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
