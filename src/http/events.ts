import type { IncomingMessage, ServerResponse } from 'node:http';
import { SSE_RETRY_MS, VIEWER_BUFFER_BYTES } from '../monitor/defaults.js';
import type { Sampler, Viewer } from '../monitor/sampler.js';

/**
 * `/events`: one Server-Sent Events stream per viewer, at most `maxViewers` at a time. Each update
 * is a whole picture (rows, totals, a tail sample), so a viewer that falls behind loses nothing by
 * skipping one; a viewer whose unread output passes VIEWER_BUFFER_BYTES is not reading at all, and
 * is dropped (a browser reconnects after `retry:`).
 */
export function openStream(
  req: IncomingMessage,
  res: ServerResponse,
  sampler: Sampler,
  maxViewers: number,
  filter: string,
): void {
  if (sampler.viewers >= maxViewers) {
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '10' });
    res.end(`too many viewers (${maxViewers}, --http-max-viewers)\n`);
    return;
  }
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Accel-Buffering': 'no', // a proxy in front must not hold the stream back
  });
  res.write(`retry: ${SSE_RETRY_MS}\n\n`);
  let sequence = 0;
  const viewer: Viewer = {
    filter,
    seen: new Set(),
    send(json: string) {
      if (res.writableLength > VIEWER_BUFFER_BYTES) {
        res.destroy();
        return;
      }
      // JSON escapes CR and LF, so the payload is one `data:` line.
      res.write(`id: ${++sequence}\nevent: update\ndata: ${json}\n\n`);
    },
  };
  sampler.add(viewer);
  res.on('close', () => sampler.remove(viewer));
  req.socket.setNoDelay(true);
}
