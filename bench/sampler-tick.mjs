#!/usr/bin/env node
/**
 * The live view's cost per tick, in one process and without the network: N connections as the
 * monitor keeps them, V viewers on real `/events` stream code (openStream) writing into sinks, and
 * the sampler's tick timed alone, and the connections' own work between ticks (what they report of
 * their requests and replies) timed apart. What bench/viewers.mjs measures end to end on a shared
 * machine, this measures without its noise.
 *
 *   npm run build
 *   node bench/sampler-tick.mjs [--clients 10000] [--viewers 5] [--ticks 400] [--filtered 0]
 *
 * --filtered F gives F of the viewers an id filter (each a different id). Reported: the tick's
 * mean, p50, p99 and max in ms, the connections' reporting between ticks (mean ms), the bytes each
 * viewer was sent per tick, and the GC time (ms) over the measured ticks.
 */
import { EventEmitter } from 'node:events';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { openStream } from '../dist/http/events.js';
import { Monitor } from '../dist/monitor/monitor.js';
import { Sampler } from '../dist/monitor/sampler.js';
import { parseRequest } from '../dist/protocol/requests.js';
import { StateTable } from '../dist/store/state-table.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    viewers: { type: 'string', default: '5' },
    ticks: { type: 'string', default: '400' },
    filtered: { type: 'string', default: '0' },
  },
});
const clients = Number(values.clients);
const viewerCount = Number(values.viewers);
const ticks = Number(values.ticks);
const filtered = Number(values.filtered);

const VALUE = parseRequest('VALUE 1');
/** A fake clock: each tick is 250 ms later, as the sampler's timer would have it. */
let clock = 1_700_000_000_000;
const monitor = new Monitor(() => clock);
// The store's table, read as the store reads it; ids cut from request lines, as the server has them.
const table = new StateTable();
monitor.store = { peek: (id) => table.get(id), size: 0 };
const watches = [];
for (let i = 1; i <= clients; i++) {
  const w = monitor.opened(i, `127.0.0.${2 + (i % 250)}:${10_000 + i}`);
  const id = `HELLO spec-client-${i}`.slice(6);
  monitor.identified(i, id);
  table.set(id, i % 100);
  watches.push(w);
}

/** The part of a ServerResponse that openStream uses; it counts what is written. */
function sink() {
  const res = new EventEmitter();
  res.bytes = 0;
  res.writableLength = 0;
  res.writeHead = () => res;
  res.cork = () => {};
  res.uncork = () => {};
  res.write = (chunk) => {
    res.bytes += typeof chunk === 'string' ? chunk.length : chunk.byteLength;
    return true;
  };
  res.destroy = () => res.emit('close');
  return res;
}
const req = { socket: { setNoDelay() {} } };

const sampler = new Sampler(monitor);
const sinks = [];
for (let v = 0; v < viewerCount; v++) {
  const res = sink();
  openStream(req, res, sampler, viewerCount, v < filtered ? `spec-client-${v * 7 + 1}` : '');
  sinks.push(res);
}

let gcMs = 0;
const gc = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
});
const durations = [];
const activity = [];
const bytes0 = sinks.map((s) => s.bytes);
for (let t = 0; t < ticks; t++) {
  clock += 250;
  // What the connections did in the quarter second, as they report it: a VALUE every 500 ms
  // each (spec load), its new value taken by the store and sent back in an OK.
  const a0 = performance.now();
  for (let i = t % 2; i < clients; i += 2) {
    const w = /** @type {any} */ (watches[i]);
    const value = (t + i) % 100;
    w.request(VALUE, clock);
    table.set(w.id, value);
    w.replies([`OK ${value}`]);
  }
  const t0 = performance.now();
  // With no viewer the server runs no tick at all.
  if (viewerCount > 0) sampler.tick();
  const t1 = performance.now();
  if (t === ticks / 4) gc.observe({ entryTypes: ['gc'] });
  if (t >= ticks / 4) {
    // the first quarter warms up
    durations.push(t1 - t0);
    activity.push(t0 - a0);
  }
}
await sleep(100); // the last GC entries arrive asynchronously
gc.disconnect();
for (const s of sinks) s.destroy();

durations.sort((a, b) => a - b);
const at = (q) => durations[Math.min(durations.length - 1, Math.floor(q * durations.length))];
const r2 = (x) => Math.round(x * 100) / 100;
const result = {
  clients,
  viewers: viewerCount,
  filtered,
  ticksMeasured: durations.length,
  tickMs: {
    mean: r2(durations.reduce((s, x) => s + x, 0) / durations.length),
    p50: r2(at(0.5)),
    p99: r2(at(0.99)),
    max: r2(durations.at(-1)),
  },
  /** The connections' own reporting between two ticks (compare with --viewers 0). */
  activityMsMean: r2(activity.reduce((s, x) => s + x, 0) / activity.length),
  bytesPerViewerPerTick: sinks.map((s, i) => Math.round((s.bytes - bytes0[i]) / ticks)),
  gcMsMeasured: r2(gcMs),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
