import { MAX_ROWS } from './defaults.js';
import type { Monitor } from './monitor.js';
import type { ClientWatch } from './watch.js';

/** Closed rows get at most this share of a capped update, so a wave of drops hides no live row. */
export const MAX_CLOSED_SHOWN = MAX_ROWS / 4;

export type Selection = {
  /** The connections shown: closed ones (oldest first), then open ones in connection order. */
  watches: ClientWatch[];
  /** Connections that match the filter but are not shown. */
  hidden: number;
};

/** Whether a connection belongs to `filter` ('' for every client, else one id). */
export const matches = (w: ClientWatch, filter: string): boolean =>
  filter === '' || w.id === filter;

/**
 * The rows of one update for `filter`: the newest MAX_CLOSED_SHOWN matching closed connections,
 * then the oldest matching open ones, MAX_ROWS in all. The same state always gives the same rows.
 * Only these become Row objects; without a filter the open connections past the cap are not even
 * visited, so the cost does not grow with the number of clients.
 */
export function selectRows(monitor: Monitor, filter: string): Selection {
  const closed = filter === '' ? monitor.closed : monitor.closed.filter((w) => w.id === filter);
  const watches = closed.slice(-MAX_CLOSED_SHOWN);
  let matching = closed.length;
  if (filter === '') {
    matching += monitor.open.size;
    for (const w of monitor.open.values()) {
      if (watches.length === MAX_ROWS) break;
      watches.push(w);
    }
  } else {
    for (const w of monitor.open.values()) {
      if (w.id !== filter) continue;
      matching++;
      if (watches.length < MAX_ROWS) watches.push(w);
    }
  }
  return { watches, hidden: matching - watches.length };
}
