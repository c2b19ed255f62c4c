import type { LineSink } from '../log/message-log.js';
import { CLOSED_ROW_MS, COMMIT_WINDOW, COMMIT_WINDOW_MS, MAX_CLOSED_ROWS } from './defaults.js';
import { Tail } from './tail.js';
import { ClientWatch, newCounts, type Sampling } from './watch.js';

/** Why a connection was refused at accept; the label values of parity_refused_total. */
export const REFUSAL_REASONS = ['stopping', 'max-clients', 'max-clients-per-address'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** What the monitor reads of the store: values for the rows, the id count for the totals. */
export type ValueSource = { peek(id: string): number | undefined; readonly size: number };

export type CommitListener = (ms: number, values: number) => void;

/**
 * What the server does, counted as it happens. Everything here is an integer, a field or a Map
 * update; snapshots, rates and charts are the sampler's, and only run while someone watches.
 */
export class Monitor {
  readonly counts = newCounts();
  /** Set by the sampler; read by every watch (see ClientWatch). */
  readonly sampling: Sampling = { on: false, tick: -1 };
  readonly open = new Map<number, ClientWatch>();
  /** Closed connections, oldest first, kept CLOSED_ROW_MS for the page and /api/clients. */
  readonly closed: ClientWatch[] = [];
  readonly tail = new Tail();
  readonly startedAt: number;
  readonly now: () => number;
  store: ValueSource | null = null;
  #log: (LineSink & { readonly acceptedBytes: number }) | null = null;
  takeovers = 0;
  readonly refused: Record<RefusalReason, number> = {
    stopping: 0,
    'max-clients': 0,
    'max-clients-per-address': 0,
  };
  commits = 0;
  commitFailures = 0;
  lastCommitOk = true;
  /** Set once the server starts to stop: /readyz turns 503. */
  stopping = false;
  /** Called for each successful commit (the histograms of /metrics). */
  onCommit: CommitListener | null = null;
  readonly #commitMs = new Float64Array(COMMIT_WINDOW);
  readonly #commitAt = new Float64Array(COMMIT_WINDOW);

  constructor(now: () => number = Date.now) {
    this.now = now;
    this.startedAt = now();
  }

  /** A new connection; it reports to the returned watch. */
  opened(number: number, remote: string): ClientWatch {
    const watch = new ClientWatch(number, remote, this.now(), this.counts, this.sampling, (w) =>
      this.#closed(w),
    );
    this.open.set(number, watch);
    return watch;
  }

  /** `id` null: a claim the store refused (the connection is anonymous again). */
  identified(number: number, id: string | null): void {
    const watch = this.open.get(number);
    if (!watch) return;
    watch.id = id;
    if (this.sampling.on) watch.setValue(id === null ? null : (this.store?.peek(id) ?? 0));
  }

  takeover(): void {
    this.takeovers++;
  }

  refuse(reason: RefusalReason): void {
    this.refused[reason]++;
  }

  /** The store's commit callback. */
  readonly committed = (ms: number, values: number, ok: boolean): void => {
    this.lastCommitOk = ok;
    if (!ok) {
      this.commitFailures++;
      return;
    }
    const at = this.commits++ % COMMIT_WINDOW;
    this.#commitMs[at] = ms;
    this.#commitAt[at] = this.now();
    this.onCommit?.(ms, values);
  };

  /** Bytes of the message log's records so far (the log counts them as it encodes). */
  get logBytes(): number {
    return this.#log?.acceptedBytes ?? 0;
  }

  /** Wraps the message log's sink: feeds the page's tail while watched. */
  tap(sink: LineSink & { readonly acceptedBytes: number }): LineSink {
    this.#log = sink;
    return {
      write: (text: string) => {
        const kept = sink.write(text);
        if (kept !== false && this.tail.active) this.tail.push(text);
        return kept;
      },
    };
  }

  /** Commit latency percentiles (ms) over the recent window, or null without recent commits. */
  commitLatency(): { p50: number; p99: number } | null {
    const since = this.now() - COMMIT_WINDOW_MS;
    const recent: number[] = [];
    const kept = Math.min(this.commits, COMMIT_WINDOW);
    for (let i = 0; i < kept; i++) if (this.#commitAt[i]! >= since) recent.push(this.#commitMs[i]!);
    if (recent.length === 0) return null;
    recent.sort((a, b) => a - b);
    const at = (q: number) =>
      recent[Math.min(recent.length - 1, Math.ceil(q * recent.length) - 1)]!;
    return { p50: at(0.5), p99: at(0.99) };
  }

  /** Drops closed rows older than CLOSED_ROW_MS (or past MAX_CLOSED_ROWS). */
  expireClosed(now = this.now()): void {
    let drop = Math.max(0, this.closed.length - MAX_CLOSED_ROWS);
    while (drop < this.closed.length && this.closed[drop]!.closedAt! < now - CLOSED_ROW_MS) drop++;
    if (drop > 0) this.closed.splice(0, drop);
  }

  #closed(watch: ClientWatch): void {
    this.open.delete(watch.number);
    watch.closedAt = this.now();
    watch.finalValue = watch.id === null ? null : (this.store?.peek(watch.id) ?? 0);
    this.closed.push(watch);
    this.expireClosed(watch.closedAt!);
  }
}
