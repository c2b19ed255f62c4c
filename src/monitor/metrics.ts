import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BYE_CODES, ERR_CODES } from '../protocol/replies.js';
import { REFUSAL_REASONS, type Monitor } from './monitor.js';

const KINDS = new Set(['VALUE', 'OK', 'EVEN', 'ODD', 'PONG', 'HELP', 'BYE', 'ERR']);
const CODES = new Set<string>([...ERR_CODES, ...BYE_CODES]);

/** `kind` and `code` labels of a reply key (`OK`, `ERR STORAGE`); anything unexpected is `other`. */
export function replyLabels(key: string): { kind: string; code: string } {
  const [kind = '', code = ''] = key.split(' ');
  return {
    kind: KINDS.has(kind) ? kind : 'other',
    code: code === '' || CODES.has(code) ? code : 'other',
  };
}

/**
 * /metrics for one server: a Registry of its own (several servers in one test process must not
 * share counters). The connections count in plain integers on the monitor; the counters here are
 * set from them when scraped, so the hot path never hashes a label set. Label values come from
 * closed sets (verbs, reply kinds and codes, refusal reasons), never from ids.
 */
export function createMetrics(monitor: Monitor): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({
    name: 'parity_connections',
    help: 'Open client connections.',
    registers,
    collect() {
      this.set(monitor.open.size);
    },
  });
  new Gauge({
    name: 'parity_ids',
    help: 'Ids in the state.',
    registers,
    collect() {
      this.set(monitor.store?.size ?? 0);
    },
  });
  new Counter({
    name: 'parity_requests_total',
    help: 'Request lines by verb (INVALID: lines that are no request).',
    labelNames: ['verb'],
    registers,
    collect() {
      this.reset();
      for (const [verb, n] of Object.entries(monitor.counts.requests)) this.inc({ verb }, n);
    },
  });
  new Counter({
    name: 'parity_replies_total',
    help: 'Reply lines by kind, and code for ERR and BYE.',
    labelNames: ['kind', 'code'],
    registers,
    collect() {
      this.reset();
      const c = monitor.counts;
      const common = { OK: c.ok, VALUE: c.value, EVEN: c.even, ODD: c.odd, PONG: c.pong };
      for (const [kind, n] of Object.entries(common)) this.inc({ kind, code: '' }, n);
      for (const [key, n] of c.replies) this.inc(replyLabels(key), n);
    },
  });
  const duration = new Histogram({
    name: 'parity_commit_duration_seconds',
    help: 'Time to make one group commit durable (journal and message log, or Redis and the log).',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers,
  });
  const batch = new Histogram({
    name: 'parity_commit_batch_size',
    help: 'Values changed by one group commit.',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000],
    registers,
  });
  monitor.onCommit = (ms, values) => {
    duration.observe(ms / 1000);
    batch.observe(values);
  };
  new Counter({
    name: 'parity_log_bytes_total',
    help: 'Bytes taken into the message log.',
    registers,
    collect() {
      this.reset();
      this.inc(monitor.logBytes);
    },
  });
  new Counter({
    name: 'parity_takeovers_total',
    help: 'Connections closed because another said HELLO with their id (BYE TAKEN_OVER).',
    registers,
    collect() {
      this.reset();
      this.inc(monitor.takeovers);
    },
  });
  new Counter({
    name: 'parity_refused_total',
    help: 'Connections refused at accept, by reason.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const reason of REFUSAL_REASONS) this.inc({ reason }, monitor.refused[reason]);
    },
  });
  return registry;
}
