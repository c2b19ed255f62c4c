/** Number formats shared by the reports (report.mjs, lib/cluster-report.mjs). */

/** A whole number with thousands separators; '–' for none. */
export const int = (/** @type {number | null | undefined} */ x) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '–'
    : Math.round(x).toLocaleString('en-US');

/** Milliseconds with precision fitting their size; '–' for none. */
export const ms = (/** @type {number | null | undefined} */ x) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '–'
    : x < 10
      ? x.toFixed(2)
      : x < 1000
        ? x.toFixed(1)
        : int(x);
