/**
 * Every limit of the HTTP side and the live view, in one place. The first three are CLI flags
 * (`--http-port`, `--no-http`, `--http-max-viewers`, or PARITY_HTTP_*); the rest are fixed, each
 * with the reason for its value.
 */
export const HTTP_DEFAULTS = {
  /** The TCP port + 1. If it is taken (a second server), the server runs without the HTTP side. */
  httpPort: 7071,
  /** Open `/events` streams beyond this are answered 503: each one costs a snapshot per update. */
  httpMaxViewers: 20,
} as const;

/** Updates per viewer are coalesced to one per tick: at most 4 a second, about what eyes follow. */
export const UPDATE_MS = 250;
/** Rates (requests/s, commits/s, log bytes/s) are averaged over this many ticks: 2 s. */
export const RATE_TICKS = 8;
/** A closed connection's row stays, greyed, with its reason, this long. */
export const CLOSED_ROW_MS = 30_000;
/** Closed rows kept at most (10,000 clients dropping at once must not keep 10,000 rows). */
export const MAX_CLOSED_ROWS = 1_000;
/** Each row's chart covers this long, one sample per tick. */
export const HISTORY_MS = 60_000;
export const HISTORY_SAMPLES = HISTORY_MS / UPDATE_MS;
/** Rows sent to a viewer per update; beyond it the page says how many are not shown. */
export const MAX_ROWS = 100;
/**
 * Message-log lines sent per update per viewer (40 a second): faster than that nobody reads them,
 * so the newest are kept and the rest counted in an "N lines skipped" marker.
 */
export const TAIL_LINES_PER_UPDATE = 10;
/** A viewer with this much unsent data is not reading: it is dropped (the page reconnects). */
export const VIEWER_BUFFER_BYTES = 1024 * 1024;
/** Commits whose durations make the p50/p99 shown on the page and in the console. */
export const COMMIT_WINDOW = 1_024;
/** Only commits this recent count toward the p50/p99. */
export const COMMIT_WINDOW_MS = 10_000;
/** The console's summary line, printed this often while clients are connected. */
export const SUMMARY_MS = 10_000;
/** The browser retries a lost event stream after this long (SSE `retry:`). */
export const SSE_RETRY_MS = 2_000;
