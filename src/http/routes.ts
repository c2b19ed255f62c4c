import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Monitor } from '../monitor/monitor.js';
import type { Sampler } from '../monitor/sampler.js';
import { snapshotNow } from '../monitor/snapshot.js';
import { isValidId } from '../protocol/syntax.js';
import { openStream } from './events.js';
import { PAGE_CSS, PAGE_HTML } from './assets.js';

/** What the routes read; none of them changes anything the TCP side stores. */
export type HttpContext = {
  monitor: Monitor;
  sampler: Sampler;
  registry: Registry;
  assets: Map<string, Buffer>;
  maxViewers: number;
  /** null when ready, else why not (stopping, the last commit failed). */
  notReady(): string | null;
};

type Route = (req: IncomingMessage, res: ServerResponse, url: URL, ctx: HttpContext) => unknown;

// The page's only sources are this server's own; nothing it shows can load or run anything else.
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}

const text = (res: ServerResponse, status: number, body: string) =>
  send(res, status, 'text/plain; charset=utf-8', body);

/** The `id` query parameter: '' for none, null if it is no valid id. */
function idFilter(url: URL): string | null {
  const id = url.searchParams.get('id') ?? '';
  return id === '' || isValidId(id) ? id : null;
}

export const ROUTES: Record<string, Route> = {
  '/': (_req, res) => {
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    send(res, 200, 'text/html; charset=utf-8', PAGE_HTML);
  },
  '/style.css': (_req, res) => send(res, 200, 'text/css; charset=utf-8', PAGE_CSS),
  '/events': (req, res, url, ctx) => {
    const filter = idFilter(url);
    if (filter === null) return text(res, 400, 'id: not a valid id\n');
    openStream(req, res, ctx.sampler, ctx.maxViewers, filter);
  },
  '/metrics': async (_req, res, _url, ctx) =>
    send(res, 200, ctx.registry.contentType, await ctx.registry.metrics()),
  '/healthz': (_req, res) => text(res, 200, 'ok\n'),
  '/readyz': (_req, res, _url, ctx) => {
    const why = ctx.notReady();
    text(res, why === null ? 200 : 503, why === null ? 'ready\n' : `not ready: ${why}\n`);
  },
  '/api/clients': (_req, res, url, ctx) => {
    const filter = idFilter(url);
    if (filter === null) return text(res, 400, 'id: not a valid id\n');
    const snapshot = ctx.sampler.snapshot(filter) ?? snapshotNow(ctx.monitor, filter);
    send(res, 200, 'application/json', `${JSON.stringify(snapshot)}\n`);
  },
};

/** `/web/<name>.js`: the page's compiled modules. */
export function webAsset(res: ServerResponse, path: string, ctx: HttpContext): boolean {
  const name = path.startsWith('/web/') ? path.slice(5) : null;
  const body = name === null ? undefined : ctx.assets.get(name);
  if (body === undefined) return false;
  send(res, 200, 'text/javascript; charset=utf-8', body);
  return true;
}
