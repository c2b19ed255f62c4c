import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { ROUTES, webAsset, type HttpContext } from './routes.js';

export type HttpOptions = {
  /** 0 picks a free port. */
  port: number;
  /** The port was asked for (flag or environment): if taken, the server does not start. */
  required: boolean;
  maxViewers: number;
};

export interface HttpSide {
  readonly port: number;
  /** The live view's address, e.g. `http://127.0.0.1:7071/`. */
  readonly url: string;
  /** Starts answering (until then every route is 503). */
  attach(ctx: HttpContext): void;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const LOOPBACK_NAMES = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Bound to loopback, the page must answer only names that are loopback: otherwise any web site
 * could point its own name at 127.0.0.1 (DNS rebinding) and read the ids and lines shown here.
 */
function hostAllowed(req: IncomingMessage, host: string): boolean {
  if (!LOOPBACK.has(host)) return true;
  const name = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  return LOOPBACK_NAMES.has(name);
}

/**
 * Listens for the HTTP side on `host`. A taken port is an error when it was asked for; when it was
 * only the default this resolves to null and the server runs without HTTP (the CLI says so),
 * because the TCP side is the main job and a second server on the machine is a normal case.
 */
export async function listenHttp(
  host: string,
  options: HttpOptions,
  logger: Logger,
): Promise<HttpSide | null> {
  let ctx: HttpContext | null = null;
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'http request failed');
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostAllowed(req, host)) return void res.writeHead(421).end('unknown host\n');
    if (ctx === null) return void res.writeHead(503).end('starting\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // Read-only: nothing over HTTP changes a stored value.
      return void res.writeHead(405, { Allow: 'GET, HEAD' }).end('read-only\n');
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = ROUTES[url.pathname];
    if (route !== undefined) await route(req, res, url, ctx);
    else if (!webAsset(res, url.pathname, ctx)) res.writeHead(404).end('not found\n');
  }
  server.listen(options.port, host);
  try {
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => Promise.reject(err)),
    ]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || options.required) {
      throw new Error(`HTTP port ${options.port}: ${(err as Error).message}`, { cause: err });
    }
    return null;
  }
  server.on('error', (err) => logger.error({ err }, 'http server error'));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('HTTP: not on TCP');
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    port: address.port,
    url: `http://${shown}:${address.port}/`,
    attach(context) {
      ctx = context;
    },
    async close() {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections(); // event streams never end on their own
      await closed;
    },
  };
}
