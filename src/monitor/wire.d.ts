/**
 * What the live view and /api/clients send, shared by the server and the page. A declaration file,
 * so neither build emits it and the page's build (DOM, no Node) can read it.
 */

/** One client as the page and /api/clients show it. Times are epoch milliseconds. */
export type Row = {
  conn: number;
  id: string | null;
  value: number | null;
  increment: number | null;
  remote: string;
  since: number;
  requestsPerSecond: number;
  lastRequestAt: number | null;
  closedAt: number | null;
  reason: string | null;
  /** Its value at each update over the last 60 s, oldest first; sent once per row per viewer. */
  history?: Array<number | null>;
};

export type Totals = {
  connections: number;
  requestsPerSecond: number;
  ids: number;
  commitP50Ms: number | null;
  commitP99Ms: number | null;
  commitsPerSecond: number;
  logBytesPerSecond: number;
};

export type Snapshot = {
  at: number;
  /** What the rates average over: the last 2 s while the page is watched, else since the start. */
  rates: 'last 2 s' | 'since start';
  totals: Totals;
  rows: Row[];
};

/** One `update` event of /events. */
export type Update = Omit<Snapshot, 'rates'> & {
  /** Rows that matched the viewer's filter but were not sent (over MAX_ROWS). */
  hidden: number;
  /** Message-log records (JSON lines) of this update, and how many older ones were skipped. */
  tail: { lines: string[]; skipped: number };
};
