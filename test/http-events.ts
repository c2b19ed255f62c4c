/** Helpers for the HTTP tests: plain GETs, and an /events reader. Not a fixture: tests import it. */
import { get, request, type IncomingMessage } from 'node:http';
import type { Update } from '../src/monitor/wire.js';

export type Reply = { status: number; headers: IncomingMessage['headers']; body: string };

/** One HTTP request; resolves with the whole body. */
export function fetchText(
  url: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // No keep-alive: each request is its own connection, as a probe's would be.
    const req = request(url, { ...options, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export type EventStream = {
  status: number;
  /** The raw text received so far (for `retry:` and `id:` lines). */
  raw(): string;
  /** The next update (past or future) for which `match` holds; earlier ones are consumed. */
  next(match?: (u: Update) => boolean): Promise<Update>;
  close(): void;
};

/** Opens `/events` and parses each `update` event. */
export function openEvents(url: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false }, (res) => {
      let text = '';
      let buffer = '';
      const updates: Update[] = [];
      const waiters: Array<() => void> = [];
      let ended = false;
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        buffer += d;
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.includes('event: update') && data) {
            updates.push(JSON.parse(data.slice(6)) as Update);
          }
        }
        for (const w of waiters.splice(0)) w();
      });
      res.on('close', () => {
        ended = true;
        for (const w of waiters.splice(0)) w();
      });
      resolve({
        status: res.statusCode!,
        raw: () => text,
        async next(match = () => true) {
          for (;;) {
            const at = updates.findIndex(match);
            if (at !== -1) return updates.splice(0, at + 1).at(-1)!;
            updates.length = 0;
            if (ended) throw new Error('event stream ended');
            await new Promise<void>((r) => waiters.push(r));
          }
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

// Run as a test file by tap (argv[1] is this file), it checks its own parser; imported, nothing.
if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  const { default: t } = await import('tap');
  const { createServer } = await import('node:http');
  t.test('openEvents parses update events cut anywhere, and skips others', async (t) => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const text =
        'retry: 5\n\n: comment\n\nid: 1\nevent: update\ndata: {"at":1}\n\nid: 2\nevent: update\ndata: {"at":2}\n\n';
      for (let i = 0; i < text.length; i += 7) res.write(text.slice(i, i + 7));
      res.end();
    }).listen(0, '127.0.0.1');
    t.teardown(() => server.close());
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as { port: number };
    const events = await openEvents(`http://127.0.0.1:${port}/`);
    t.equal((await events.next()).at, 1);
    t.equal((await events.next((u) => u.at === 2)).at, 2);
    await t.rejects(events.next(), /ended/);
    t.match(events.raw(), /^retry: 5\n/);
  });
}
