import { realClock, type Clock, type TimerHandle } from '../clock.js';
import { HISTORY_SAMPLES, RATE_TICKS, UPDATE_MS } from './defaults.js';
import type { Monitor } from './monitor.js';
import { matches, selectRows } from './select.js';
import { currentValue, row, totals, totalsCounters } from './snapshot.js';
import { NO_VALUE, RING, type ClientWatch } from './watch.js';
import type { Row, Snapshot, Totals, Update } from './wire.js';

export type { Update } from './wire.js';

/** One open event stream, as the sampler sees it. */
export interface Viewer {
  /** '' for every client, else one id: the rows and the tail show only that id. */
  readonly filter: string;
  /** Connections whose chart history this viewer already has. */
  seen: ReadonlySet<number>;
  /** One update as JSON. Viewers sent the same update are handed the same string. */
  send(json: string): void;
}

export type SamplerTimers = Pick<Clock, 'setTimeout' | 'clearTimeout'>;

/** A tick: its number, its time, and the totals it sent. */
type Tick = { tick: number; at: number; totals: Totals };

const NO_LINES: Update['tail'] = { lines: [], skipped: 0 };
const round = (n: number) => Math.round(n * 10) / 10;

/**
 * The live view's clock: while at least one viewer is connected, every UPDATE_MS it takes a tick
 * (its time and the totals) and, once per distinct filter, turns the at most MAX_ROWS rows shown
 * into an update, serialised once for every viewer with that filter. It visits no other
 * connection: each one keeps its own counts and values by tick as it goes (ClientWatch.fillTo).
 * With no viewer it does nothing at all: no timer runs, and the connections only test a flag.
 */
export class Sampler {
  readonly #monitor: Monitor;
  readonly #timers: SamplerTimers;
  /** The viewers by filter: a filter's viewers share its rows, its tail sample and its JSON. */
  readonly #groups = new Map<string, Set<Viewer>>();
  readonly #at = new Float64Array(RING);
  readonly #totals = [new Float64Array(RING), new Float64Array(RING), new Float64Array(RING)];
  /** The first tick since someone started watching. */
  #first = 0;
  #viewers = 0;
  #timer: TimerHandle | null = null;
  #last: Tick | null = null;

  constructor(monitor: Monitor, timers: SamplerTimers = realClock) {
    this.#monitor = monitor;
    this.#timers = timers;
  }

  get viewers(): number {
    return this.#viewers;
  }

  add(viewer: Viewer): void {
    const group = this.#groups.get(viewer.filter) ?? new Set();
    this.#groups.set(viewer.filter, group.add(viewer));
    this.#viewers++;
    this.#monitor.tail.watch(viewer.filter);
    if (this.#timer !== null) return;
    this.#start();
    this.#run(); // the first picture at once, not a quarter second later
  }

  remove(viewer: Viewer): void {
    const group = this.#groups.get(viewer.filter);
    if (group === undefined || !group.delete(viewer)) return;
    this.#viewers--;
    if (group.size === 0) this.#groups.delete(viewer.filter);
    this.#monitor.tail.retain(new Set(this.#groups.keys()));
    if (this.#viewers > 0 || this.#timer === null) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = null;
    this.#last = null;
    this.#monitor.sampling.on = false;
  }

  /** Takes a tick, and sends every viewer its update (the timer's work, while watched). */
  tick(): void {
    const last = this.#sample();
    const tails = this.#monitor.tail.take();
    for (const [filter, viewers] of this.#groups) {
      this.#send(last, filter, viewers, tails.get(filter) ?? NO_LINES);
    }
  }

  /**
   * While watched, what /api/clients shows: every row matching `filter`, with the values and the
   * rates of the last tick. Built only when asked for. Null while nobody watches.
   */
  snapshot(filter = ''): Snapshot | null {
    const last = this.#last;
    if (last === null) return null;
    const rows: Row[] = [];
    for (const w of this.#monitor.closed) if (matches(w, filter)) rows.push(this.#row(last, w));
    for (const w of this.#monitor.open.values())
      if (matches(w, filter)) rows.push(this.#row(last, w));
    return { at: last.at, rates: 'last 2 s', totals: last.totals, rows };
  }

  #run(): void {
    this.#timer = this.#timers.setTimeout(() => this.#run(), UPDATE_MS);
    this.tick();
  }

  /**
   * Someone starts watching: each open connection is sampled from the next tick on. After a time
   * with nobody watching, rates and charts start over rather than span the gap.
   */
  #start(): void {
    const monitor = this.#monitor;
    this.#first = monitor.sampling.tick + 1;
    for (const w of monitor.open.values()) w.startSampling(currentValue(monitor, w));
    monitor.sampling.on = true;
  }

  #sample(): Tick {
    const monitor = this.#monitor;
    const at = monitor.now();
    monitor.expireClosed(at);
    const tick = ++monitor.sampling.tick;
    const slot = tick % RING;
    const back = Math.min(tick - this.#first, RATE_TICKS);
    const from = (tick - back) % RING;
    const seconds = Math.max(0.001, (at - this.#at[from]!) / 1000);
    this.#at[slot] = at;
    const counters = totalsCounters(monitor);
    const rates = counters.map((n, i) => {
      this.#totals[i]![slot] = n;
      return back === 0 ? 0 : round((n - this.#totals[i]![from]!) / seconds);
    }) as [number, number, number];
    this.#last = { tick, at, totals: totals(monitor, rates) };
    return this.#last;
  }

  /**
   * One filter's update. The rows are built once; a viewer that has not seen a row yet also gets
   * its chart history, so viewers are grouped by the rows new to them (none, once they have been
   * watching a tick) and each group's update is serialised once.
   */
  #send(last: Tick, filter: string, viewers: Set<Viewer>, tail: Update['tail']): void {
    const { watches, hidden } = selectRows(this.#monitor, filter);
    const rows = watches.map((w) => this.#row(last, w));
    const shown: ReadonlySet<number> = new Set(watches.map((w) => w.number));
    const sent = new Map<string, string>();
    for (const viewer of viewers) {
      const fresh = watches.filter((w) => w.closedAt === null && !viewer.seen.has(w.number));
      const key = fresh.map((w) => w.number).join();
      let json = sent.get(key);
      if (json === undefined) {
        const history = new Map(fresh.map((w) => [w.number, historyOf(w, last.tick)]));
        const update: Update = {
          at: last.at,
          totals: last.totals,
          rows: history.size === 0 ? rows : rows.map((r) => withHistory(r, history.get(r.conn))),
          hidden,
          tail,
        };
        json = JSON.stringify(update);
        sent.set(key, json);
      }
      viewer.seen = shown;
      viewer.send(json);
    }
  }

  /** A connection's row as of the last tick (an open one not sampled yet: as of now, rate 0). */
  #row(last: Tick, w: ClientWatch): Row {
    if (w.closedAt !== null || w.firstTick > last.tick) {
      return row(w, currentValue(this.#monitor, w), 0);
    }
    w.fillTo(last.tick);
    const value = w.history![last.tick % HISTORY_SAMPLES]!;
    return row(w, value === NO_VALUE ? null : value, this.#rate(last.tick, w));
  }

  /** Requests per second over the last RATE_TICKS ticks, or fewer since it was first sampled. */
  #rate(tick: number, w: ClientWatch): number {
    const back = Math.min(tick - w.firstTick, RATE_TICKS);
    if (back === 0) return 0;
    const slot = tick % RING;
    const from = (tick - back) % RING;
    const seconds = Math.max(0.001, (this.#at[slot]! - this.#at[from]!) / 1000);
    return round((w.rateRing![slot]! - w.rateRing![from]!) / seconds);
  }
}

function withHistory(r: Row, history: Row['history']): Row {
  return history === undefined ? r : { ...r, history };
}

/** The client's values at each tick it was sampled, up to `tick`, oldest first. */
function historyOf(w: ClientWatch, tick: number): Array<number | null> {
  const history = w.history!; // its row was built this tick: filled up to it
  const out: Array<number | null> = [];
  for (let t = Math.max(w.firstTick, tick - HISTORY_SAMPLES + 1); t <= tick; t++) {
    const v = history[t % HISTORY_SAMPLES]!;
    out.push(v === NO_VALUE ? null : v);
  }
  return out;
}
