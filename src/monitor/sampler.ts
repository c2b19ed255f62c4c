import { HISTORY_SAMPLES, MAX_ROWS, RATE_TICKS, UPDATE_MS } from './defaults.js';
import type { Monitor } from './monitor.js';
import { row, totals, totalsCounters } from './snapshot.js';
import type { Row, Snapshot, Update } from './wire.js';

export type { Update } from './wire.js';
import type { ClientWatch } from './watch.js';

/** One open event stream, as the sampler sees it. */
export interface Viewer {
  /** '' for every client, else one id: the rows and the tail show only that id. */
  readonly filter: string;
  /** Connections whose chart history this viewer already has. */
  seen: Set<number>;
  update(update: Update): void;
}

/** Closed rows get at most this share of a capped update, so a wave of drops hides no live row. */
const MAX_CLOSED_SHOWN = MAX_ROWS / 4;
const RING = RATE_TICKS + 1;
const NO_VALUE = -1;
const NO_LINES: Update['tail'] = { lines: [], skipped: 0 };
const round = (n: number) => Math.round(n * 10) / 10;

/**
 * The live view's clock: while at least one viewer is connected, every UPDATE_MS it samples each
 * connection (request count, value), computes rates over the last RATE_TICKS ticks, builds one
 * snapshot and hands each viewer its part. With no viewer it does nothing at all: no timer runs.
 */
export class Sampler {
  readonly #monitor: Monitor;
  readonly #viewers = new Set<Viewer>();
  readonly #at = new Float64Array(RING);
  readonly #totals = [new Float64Array(RING), new Float64Array(RING), new Float64Array(RING)];
  #ticks = 0;
  #timer: ReturnType<typeof setInterval> | null = null;
  latest: Snapshot | null = null;

  constructor(monitor: Monitor) {
    this.#monitor = monitor;
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  add(viewer: Viewer): void {
    this.#viewers.add(viewer);
    this.#monitor.tail.watch(viewer.filter);
    if (this.#timer !== null) return;
    this.#reset();
    this.#timer = setInterval(() => this.tick(), UPDATE_MS);
    this.tick(); // the first picture at once, not a quarter second later
  }

  remove(viewer: Viewer): void {
    if (!this.#viewers.delete(viewer)) return;
    this.#monitor.tail.retain(new Set([...this.#viewers].map((v) => v.filter)));
    if (this.#viewers.size > 0 || this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    this.latest = null;
  }

  /** Samples, and sends every viewer its update. */
  tick(): void {
    const snapshot = this.#sample();
    this.latest = snapshot;
    const tails = this.#monitor.tail.take();
    for (const viewer of this.#viewers) {
      viewer.update(this.#view(snapshot, viewer, tails.get(viewer.filter)));
    }
  }

  /** After a time with nobody watching, rates and charts start over rather than span the gap. */
  #reset(): void {
    this.#ticks = 0;
    for (const w of this.#monitor.open.values()) {
      w.rateRing = null;
      w.history = null;
      w.samples = 0;
    }
  }

  #sample(): Snapshot {
    const monitor = this.#monitor;
    const at = monitor.now();
    monitor.expireClosed(at);
    const tick = this.#ticks++;
    const slot = tick % RING;
    const back = Math.min(tick, RATE_TICKS);
    const from = (tick - back) % RING;
    const seconds = Math.max(0.001, (at - this.#at[from]!) / 1000);
    this.#at[slot] = at;
    const counters = totalsCounters(monitor);
    const rates = counters.map((n, i) => {
      this.#totals[i]![slot] = n;
      return back === 0 ? 0 : round((n - this.#totals[i]![from]!) / seconds);
    }) as [number, number, number];
    const rows: Row[] = monitor.closed.map((w) => row(monitor, w, 0));
    for (const w of monitor.open.values()) rows.push(this.#sampleClient(w, at, slot));
    return { at, rates: 'last 2 s', totals: totals(monitor, rates), rows };
  }

  #sampleClient(w: ClientWatch, at: number, slot: number): Row {
    w.rateRing ??= new Float64Array(RING);
    w.history ??= new Int8Array(HISTORY_SAMPLES).fill(NO_VALUE);
    const back = Math.min(w.samples, RATE_TICKS);
    const from = (slot - back + RING) % RING;
    const seconds = Math.max(0.001, (at - this.#at[from]!) / 1000);
    const rate = back === 0 ? 0 : round((w.requests - w.rateRing[from]!) / seconds);
    w.rateRing[slot] = w.requests;
    const r = row(this.#monitor, w, rate);
    w.history[w.samples % HISTORY_SAMPLES] = r.value ?? NO_VALUE;
    w.samples++;
    return r;
  }

  #view(snapshot: Snapshot, viewer: Viewer, tail: Update['tail'] = NO_LINES): Update {
    const matching =
      viewer.filter === '' ? snapshot.rows : snapshot.rows.filter((r) => r.id === viewer.filter);
    const closed = matching.filter((r) => r.closedAt !== null).slice(-MAX_CLOSED_SHOWN);
    const open = matching.filter((r) => r.closedAt === null).slice(0, MAX_ROWS - closed.length);
    const seen = new Set<number>();
    const rows = [...closed, ...open].map((r) => {
      seen.add(r.conn);
      if (viewer.seen.has(r.conn)) return r;
      const w = this.#monitor.open.get(r.conn);
      return w ? { ...r, history: historyOf(w) } : r;
    });
    viewer.seen = seen;
    return {
      at: snapshot.at,
      totals: snapshot.totals,
      rows,
      hidden: matching.length - rows.length,
      tail,
    };
  }
}

/** The client's values at each tick it was sampled, oldest first. */
function historyOf(w: ClientWatch): Array<number | null> {
  if (w.history === null) return [];
  const kept = Math.min(w.samples, HISTORY_SAMPLES);
  const out: Array<number | null> = [];
  for (let i = w.samples - kept; i < w.samples; i++) {
    const v = w.history[i % HISTORY_SAMPLES]!;
    out.push(v === NO_VALUE ? null : v);
  }
  return out;
}
