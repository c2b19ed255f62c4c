import type { Totals, Update } from '../monitor/wire.js';
import { ClientsTable } from './clients.js';
import { bytes, orDash } from './format.js';
import { Tail } from './tail.js';

/** After the server refused the stream (too many viewers) or went away, try again this late. */
const RETRY_MS = 10_000;
/** Typing in the filter reconnects once it pauses this long. */
const FILTER_DELAY_MS = 300;
const ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const status = $<HTMLSpanElement>('status');
const totalsList = $<HTMLDListElement>('totals');
const hidden = $<HTMLSpanElement>('hidden');
const filterInput = $<HTMLInputElement>('filter');
const table = new ClientsTable($<HTMLTableElement>('clients').tBodies[0]!);
const tail = new Tail($<HTMLOListElement>('tail'), $<HTMLButtonElement>('pause'));

function setStatus(text: string, state: 'live' | 'down' | '') {
  status.textContent = text;
  status.className = `status ${state}`;
}

function showTotals(t: Totals): void {
  const ms = (v: number | null) => (v === null ? '–' : `${v.toFixed(1)} ms`);
  const items: Array<[string, string]> = [
    ['connections', String(t.connections)],
    ['requests/s', t.requestsPerSecond.toFixed(1)],
    ['ids stored', String(t.ids)],
    ['commit p50', ms(t.commitP50Ms)],
    ['commit p99', ms(t.commitP99Ms)],
    ['commits/s', t.commitsPerSecond.toFixed(1)],
    ['log', bytes(t.logBytesPerSecond)],
  ];
  totalsList.replaceChildren(
    ...items.map(([name, value]) => {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = name;
      dd.textContent = orDash(value);
      dd.dataset['total'] = name;
      div.append(dt, dd);
      return div;
    }),
  );
}

let source: EventSource | null = null;
let retry: ReturnType<typeof setTimeout> | null = null;

function connect(filter: string): void {
  source?.close();
  if (retry !== null) clearTimeout(retry);
  table.clear();
  tail.clear();
  setStatus('connecting…', '');
  const es = new EventSource(
    filter === '' ? '/events' : `/events?id=${encodeURIComponent(filter)}`,
  );
  source = es;
  es.addEventListener('open', () => setStatus('live', 'live'));
  es.addEventListener('update', (event) => {
    const update = JSON.parse((event as MessageEvent<string>).data) as Update;
    showTotals(update.totals);
    table.update(update.rows, update.at);
    hidden.textContent = update.hidden > 0 ? `(${update.hidden} more not shown; filter by id)` : '';
    tail.add(update.tail.lines, update.tail.skipped);
  });
  es.addEventListener('error', () => {
    if (es.readyState !== EventSource.CLOSED) return setStatus('reconnecting…', 'down');
    // Closed for good (a 503: too many viewers, or the server stopping): try again later.
    setStatus('disconnected; retrying', 'down');
    retry = setTimeout(() => connect(filter), RETRY_MS);
  });
}

let typing: ReturnType<typeof setTimeout> | null = null;
filterInput.addEventListener('input', () => {
  if (typing !== null) clearTimeout(typing);
  const value = filterInput.value.trim();
  const valid = value === '' || ID_RE.test(value);
  filterInput.setCustomValidity(valid ? '' : 'an id is 1-64 of A-Z a-z 0-9 _ . -');
  if (valid) typing = setTimeout(() => connect(value), FILTER_DELAY_MS);
});

connect('');
