import { createMetrics } from '../monitor/metrics.js';
import type { Monitor } from '../monitor/monitor.js';
import { Sampler } from '../monitor/sampler.js';
import { loadAssets } from './assets.js';
import type { HttpOptions, HttpSide } from './server.js';

/** Starts answering on a listening HTTP side: the routes read `monitor`, and nothing else. */
export async function serveHttp(http: HttpSide, monitor: Monitor, options: HttpOptions) {
  http.attach({
    monitor,
    sampler: new Sampler(monitor),
    registry: createMetrics(monitor),
    assets: await loadAssets(),
    maxViewers: options.maxViewers,
    notReady: () =>
      monitor.stopping ? 'stopping' : monitor.lastCommitOk ? null : 'the last commit failed',
  });
}
