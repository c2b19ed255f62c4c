import type { Logger } from 'pino';
import { SUMMARY_MS } from './defaults.js';
import type { Monitor } from './monitor.js';
import { totalsCounters } from './snapshot.js';

/**
 * The console's summary: one line every SUMMARY_MS while clients are connected, so a person at
 * the terminal sees the server working without reading the message log. Returns the stop function.
 */
export function startSummary(monitor: Monitor, logger: Logger, every = SUMMARY_MS): () => void {
  let last = totalsCounters(monitor)[0];
  let lastAt = monitor.now();
  const timer = setInterval(() => {
    const requests = totalsCounters(monitor)[0];
    const at = monitor.now();
    const perSecond = Math.round(((requests - last) / Math.max(1, at - lastAt)) * 10_000) / 10;
    last = requests;
    lastAt = at;
    const connections = monitor.open.size;
    if (connections === 0) return;
    const p99 = monitor.commitLatency()?.p99 ?? null;
    const commitP99Ms = p99 === null ? null : Math.round(p99 * 10) / 10;
    logger.info(
      { connections, requestsPerSecond: perSecond, commitP99Ms },
      `summary: ${connections} connections, ${perSecond} requests/s, commit p99 ${commitP99Ms ?? '-'} ms`,
    );
  }, every);
  timer.unref();
  return () => clearInterval(timer);
}
