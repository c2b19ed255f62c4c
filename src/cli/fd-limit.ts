import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { FD_HEADROOM } from '../limits.js';

/** RLIMIT_NOFILE; Infinity stands for `unlimited`. */
export type NofileLimit = { soft: number; hard: number };

export type FdDeps = {
  /** The text of /proc/self/limits, or null where there is none (not Linux). */
  readLimits(): string | null;
  /** Sets this process's soft limit, keeping the hard one; throws if it could not. */
  setSoft(soft: number): void;
  /** File descriptors open now. */
  openNow(): number;
};

export type FdPlan = {
  /** The --max-clients asked for, and the one that fits. */
  wanted: number;
  maxClients: number;
  /** Descriptors kept for everything but clients: FD_HEADROOM plus those Node holds at start. */
  reserved: number;
  before: NofileLimit | null;
  after: NofileLimit | null;
  raiseError?: string;
};

export function parseNofile(procLimits: string): NofileLimit | null {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(procLimits);
  if (m === null) return null;
  const n = (s: string) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

/** Sets the soft open-file limit of `pid` with util-linux prlimit (Node has no setrlimit). */
export function runPrlimit(pid: number, soft: number): void {
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:`], {
    encoding: 'utf8',
    timeout: 5_000,
  });
  if (r.error !== undefined) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? 'prlimit (util-linux) is not installed' : r.error.message);
  }
  if (r.status !== 0) throw new Error(`prlimit: ${r.stderr.trim() || `exit ${r.status}`}`);
}

export const systemFds: FdDeps = {
  readLimits() {
    try {
      return readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  },
  setSoft: (soft) => runPrlimit(process.pid, soft),
  openNow() {
    try {
      return readdirSync('/proc/self/fd').length - 1; // less the one reading the folder
    } catch {
      return 0;
    }
  },
};

/**
 * Redis' adjustOpenFilesLimit: a server that accepts more clients than it has descriptors fails
 * the clients it already has (`ERR STORAGE (EMFILE)` when a state write cannot open its temp
 * file) and resets new ones at accept instead of answering `BYE SERVER_BUSY`. So raise the soft
 * limit toward max-clients + headroom, capped by the hard limit, and if that is still short, serve
 * fewer clients: the rest are refused cleanly. Node itself already raises the soft limit to the hard
 * one at start, so on Linux the raise rarely has anything left to do; it stays for other launchers.
 * The headroom counts what Node holds before the first client (about 20: stdio, epoll, pipes), on
 * top of FD_HEADROOM, which Redis sizes for its own handful of files.
 */
export function fitClientsToFdLimit(wanted: number, deps: FdDeps = systemFds): FdPlan {
  const text = deps.readLimits();
  const before = text === null ? null : parseNofile(text);
  const reserved = FD_HEADROOM + deps.openNow();
  const plan: FdPlan = { wanted, maxClients: wanted, reserved, before, after: before };
  if (before === null) return plan; // no /proc: nothing to measure, trust the operator
  const needed = wanted + reserved;
  if (before.soft >= needed) return plan;
  const target = Math.min(needed, before.hard);
  if (target > before.soft) {
    try {
      deps.setSoft(target);
    } catch (err) {
      plan.raiseError = (err as Error).message;
    }
    const again = deps.readLimits();
    plan.after = (again === null ? null : parseNofile(again)) ?? before;
  }
  const soft = plan.after!.soft;
  if (soft < needed) plan.maxClients = Math.max(1, soft - reserved);
  return plan;
}

export type LogLine = { level: 'info' | 'warn'; fields: Record<string, unknown>; msg: string };

/** What the operator should read about `plan`, for the console log. */
export function describeFdPlan(plan: FdPlan): LogLine[] {
  const lines: LogLine[] = [];
  const { before, after } = plan;
  if (before === null || after === null) return lines;
  if (after.soft > before.soft) {
    lines.push({
      level: 'info',
      fields: { from: before.soft, to: after.soft, hard: after.hard },
      msg: `raised the open-file limit from ${before.soft} to ${after.soft}`,
    });
  }
  if (plan.raiseError !== undefined) {
    lines.push({
      level: 'warn',
      fields: { error: plan.raiseError },
      msg: `could not raise the open-file limit: ${plan.raiseError}`,
    });
  }
  if (plan.maxClients < plan.wanted) {
    const needed = plan.wanted + plan.reserved;
    lines.push({
      level: 'warn',
      fields: {
        soft: after.soft,
        hard: after.hard,
        reserved: plan.reserved,
        wanted: plan.wanted,
        maxClients: plan.maxClients,
      },
      msg:
        `the open-file limit is ${after.soft} (hard ${after.hard}): serving at most ` +
        `${plan.maxClients} clients instead of --max-clients ${plan.wanted}, ${plan.reserved} ` +
        `descriptors kept for the server; to serve them all, raise it to ${needed} ` +
        `(ulimit -n ${needed}, or LimitNOFILE=${needed} in a systemd unit) or lower --max-clients`,
    });
  }
  return lines;
}
