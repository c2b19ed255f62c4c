import type { Row } from '../monitor/wire.js';
import { CHART_SAMPLES, drawChart, newChart } from './chart.js';
import { ago, clock, clockMs, orDash } from './format.js';

const COLUMNS = [
  'conn',
  'id',
  'value',
  'chart',
  'increment',
  'remote',
  'since',
  'rate',
  'last',
  'state',
] as const;
type Column = (typeof COLUMNS)[number];

type RowView = {
  tr: HTMLTableRowElement;
  cells: Record<Column, HTMLTableCellElement>;
  chart: HTMLCanvasElement;
  history: Array<number | null>;
};

const NUMERIC = new Set<Column>(['conn', 'value', 'increment', 'rate']);

/** The clients table: one row per connection, kept by connection number and updated in place. */
export class ClientsTable {
  readonly #body: HTMLTableSectionElement;
  readonly #views = new Map<number, RowView>();

  constructor(body: HTMLTableSectionElement) {
    this.#body = body;
  }

  clear(): void {
    this.#views.clear();
    this.#body.replaceChildren();
  }

  update(rows: Row[], now: number): void {
    const shown = new Set<number>();
    for (const row of rows) {
      shown.add(row.conn);
      const view = this.#views.get(row.conn) ?? this.#create(row.conn);
      this.#fill(view, row, now);
    }
    for (const [conn, view] of this.#views) {
      if (shown.has(conn)) continue;
      view.tr.remove();
      this.#views.delete(conn);
    }
    const order = [...this.#views.keys()].sort((a, b) => a - b);
    order.forEach((conn, i) => {
      const tr = this.#views.get(conn)!.tr;
      if (this.#body.children[i] !== tr)
        this.#body.insertBefore(tr, this.#body.children[i] ?? null);
    });
  }

  #create(conn: number): RowView {
    const tr = document.createElement('tr');
    tr.dataset['conn'] = String(conn);
    const cells = {} as Record<Column, HTMLTableCellElement>;
    for (const column of COLUMNS) {
      const td = document.createElement('td');
      td.className = NUMERIC.has(column) ? `${column} num` : column;
      tr.append(td);
      cells[column] = td;
    }
    const chart = newChart();
    cells.chart.append(chart);
    const view = { tr, cells, chart, history: [] };
    this.#views.set(conn, view);
    return view;
  }

  #fill(view: RowView, row: Row, now: number): void {
    const { tr, cells } = view;
    // Ids and addresses are peer input: they go in as text, never as markup.
    if (row.id !== null) tr.dataset['id'] = row.id;
    tr.classList.toggle('closed', row.closedAt !== null);
    cells.conn.textContent = `#${row.conn}`;
    cells.id.textContent = orDash(row.id);
    cells.value.textContent = orDash(row.value);
    cells.increment.textContent = row.increment === null ? '–' : `+${row.increment}`;
    cells.remote.textContent = row.remote;
    cells.since.textContent = clock(row.since);
    cells.rate.textContent = row.closedAt === null ? row.requestsPerSecond.toFixed(1) : '–';
    cells.last.textContent =
      row.lastRequestAt === null
        ? '–'
        : `${clockMs(row.lastRequestAt)} (${ago(row.lastRequestAt, now)})`;
    cells.state.textContent =
      row.closedAt === null
        ? 'connected'
        : `closed: ${row.reason ?? '?'} (${ago(row.closedAt, now)})`;
    if (row.history !== undefined) view.history = row.history.slice(-CHART_SAMPLES);
    else if (row.closedAt === null) {
      view.history.push(row.value);
      if (view.history.length > CHART_SAMPLES) view.history.shift();
    }
    drawChart(view.chart, view.history);
  }
}
