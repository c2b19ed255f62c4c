/**
 * Live-view viewers for the benchmark: each one is what a browser tab on `/` costs the server, an
 * open `/events` stream, without the browser. It reads and counts the Server-Sent Events and does
 * nothing else with them, so the bench process adds little CPU beside the server it measures.
 */
import { Buffer } from 'node:buffer';
import { get } from 'node:http';
import { clearTimeout, setTimeout } from 'node:timers';

/** A viewer that has had no update this long after connecting is reported as not attached. */
const FIRST_UPDATE_TIMEOUT_MS = 10_000;

/**
 * @typedef {{
 *   url: string, status: number, updates: number, bytes: number, error: string | null,
 *   close(): void,
 * }} Viewer
 */

/**
 * Opens one event stream and resolves once its first `update` event has arrived (the sampler sends
 * one at once when a viewer attaches), so a resolved viewer is known to be attached.
 * @param {string} url e.g. http://127.0.0.1:PORT/events
 * @returns {Promise<Viewer>}
 */
export function attachViewer(url) {
  return new Promise((resolve, reject) => {
    /** @type {Viewer} */
    const viewer = {
      url,
      status: 0,
      updates: 0,
      bytes: 0,
      error: null,
      close: () => req.destroy(),
    };
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${url}: no update within ${FIRST_UPDATE_TIMEOUT_MS} ms`));
    }, FIRST_UPDATE_TIMEOUT_MS);
    // A socket of its own (no pooling agent), as each browser tab has.
    const req = get(url, { agent: false, headers: { Accept: 'text/event-stream' } }, (res) => {
      viewer.status = res.statusCode ?? 0;
      if (viewer.status !== 200) {
        clearTimeout(timer);
        res.resume();
        reject(new Error(`${url}: HTTP ${viewer.status}`));
        return;
      }
      res.setEncoding('utf8');
      let rest = '';
      res.on('data', (/** @type {string} */ text) => {
        viewer.bytes += Buffer.byteLength(text);
        // Events end in a blank line; only the `event:` field is looked at, the data is skipped.
        const data = rest + text;
        let start = 0;
        for (let end = data.indexOf('\n\n'); end !== -1; end = data.indexOf('\n\n', start)) {
          if (data.slice(start, end).includes('\nevent: update\n')) {
            viewer.updates++;
            if (viewer.updates === 1) {
              clearTimeout(timer);
              resolve(viewer);
            }
          }
          start = end + 2;
        }
        rest = data.slice(start);
      });
      res.on('close', () => {
        if (!req.destroyed) viewer.error ??= 'stream closed by the server';
      });
    });
    req.on('error', (err) => {
      viewer.error ??= err.message;
      clearTimeout(timer);
      reject(err);
    });
  });
}
