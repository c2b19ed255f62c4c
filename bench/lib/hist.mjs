/**
 * A latency histogram that several processes can fill and one can merge: log-spaced buckets 2%
 * wide over microseconds, so a percentile is within ~1% of the true value at any scale from 1 µs
 * to minutes, and the whole thing serialises to a few hundred numbers over IPC.
 */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 1200; // 1.02^1200 µs ≈ 20 days: nothing overflows

export class Histogram {
  counts = new Float64Array(BUCKETS);
  count = 0;
  sum = 0;
  min = Infinity;
  max = 0;

  /** @param {number} ms a latency in milliseconds */
  record(ms) {
    const us = ms * 1000;
    const i = us < 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us) / LOG_GROWTH) + 1);
    this.counts[i]++;
    this.count++;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  /** @param {number} q 0..1 @returns {number} milliseconds (upper edge of the bucket) */
  percentile(q) {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(this.max, i === 0 ? 0.001 : GROWTH ** i / 1000);
    }
    return this.max;
  }

  /** @param {Histogram} other */
  add(other) {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  summary() {
    const r = (/** @type {number} */ x) =>
      Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null;
    return {
      count: this.count,
      mean: r(this.count ? this.sum / this.count : NaN),
      p50: r(this.percentile(0.5)),
      p99: r(this.percentile(0.99)),
      p999: r(this.percentile(0.999)),
      max: r(this.count ? this.max : NaN),
    };
  }

  toJSON() {
    /** @type {Record<number, number>} */
    const sparse = {};
    this.counts.forEach((c, i) => {
      if (c > 0) sparse[i] = c;
    });
    return { sparse, count: this.count, sum: this.sum, min: this.min, max: this.max };
  }

  /** @param {ReturnType<Histogram['toJSON']>} json */
  static fromJSON(json) {
    const h = new Histogram();
    for (const [i, c] of Object.entries(json.sparse)) h.counts[Number(i)] = c;
    h.count = json.count;
    h.sum = json.sum;
    h.min = json.min ?? Infinity;
    h.max = json.max;
    return h;
  }
}
