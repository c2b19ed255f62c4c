import type { Monitor } from './monitor.js';
import { matches } from './select.js';
import type { ClientWatch } from './watch.js';
import type { Row, Snapshot, Totals } from './wire.js';

export type { Row, Snapshot, Totals } from './wire.js';

const round = (n: number, by = 10) => Math.round(n * by) / by;

/** The sums the totals' rates are taken from. */
export function totalsCounters(
  monitor: Monitor,
): [requests: number, commits: number, bytes: number] {
  let requests = 0;
  for (const n of Object.values(monitor.counts.requests)) requests += n;
  return [requests, monitor.commits, monitor.logBytes];
}

/** A connection's value now: the store's for an open one, the last one known for a closed one. */
export function currentValue(monitor: Monitor, w: ClientWatch): number | null {
  if (w.closedAt !== null) return w.finalValue;
  return w.id === null ? null : (monitor.store?.peek(w.id) ?? 0);
}

export function row(w: ClientWatch, value: number | null, requestsPerSecond: number): Row {
  return {
    conn: w.number,
    id: w.id,
    value,
    increment: w.increment,
    remote: w.remote,
    since: w.since,
    requestsPerSecond,
    lastRequestAt: w.lastRequestAt,
    closedAt: w.closedAt,
    reason: w.reason,
  };
}

export function totals(monitor: Monitor, rates: [number, number, number]): Totals {
  const latency = monitor.commitLatency();
  return {
    connections: monitor.open.size,
    requestsPerSecond: rates[0],
    ids: monitor.store?.size ?? 0,
    commitP50Ms: latency === null ? null : round(latency.p50, 100),
    commitP99Ms: latency === null ? null : round(latency.p99, 100),
    commitsPerSecond: rates[1],
    logBytesPerSecond: rates[2],
  };
}

/**
 * A snapshot computed on demand (/api/clients while nobody watches) of the connections that match
 * `filter` ('' for all): rates are averages since the connection opened, or since the server
 * started.
 */
export function snapshotNow(monitor: Monitor, filter = ''): Snapshot {
  const at = monitor.now();
  monitor.expireClosed(at);
  const per = (count: number, since: number) => round(count / Math.max(1, (at - since) / 1000));
  const counters = totalsCounters(monitor);
  const rows: Row[] = [];
  for (const w of monitor.closed) if (matches(w, filter)) rows.push(row(w, w.finalValue, 0));
  for (const w of monitor.open.values()) {
    if (matches(w, filter)) rows.push(row(w, currentValue(monitor, w), per(w.requests, w.since)));
  }
  return {
    at,
    rates: 'since start',
    totals: totals(monitor, [
      per(counters[0], monitor.startedAt),
      per(counters[1], monitor.startedAt),
      per(counters[2], monitor.startedAt),
    ]),
    rows,
  };
}
