import type { Socket } from 'node:net';
import { realClock, type Clock } from '../clock.js';
import { ProxyHeaderParser, ProxyProtocolError, type ProxyHeader } from './proxy-protocol.js';

/**
 * How long a new connection may take to send its PROXY header. A balancer sends it at once, in
 * its first packet (HAProxy: as soon as the server connection is up, before any client byte); a
 * peer still silent after this is not one, and must not hold a connection slot.
 */
export const PROXY_HEADER_TIMEOUT_MS = 5_000;

export type ReadProxyHeaderOptions = { timeoutMs: number; clock?: Clock };

/**
 * Reads the PROXY protocol header from a freshly accepted socket, before anything else reads it:
 * no 'data' listener, not piped, not wrapped in TLS yet (the header comes before the handshake).
 * The bytes after the header are put back with `unshift`, so whatever reads the socket next (the
 * line protocol, or a `tls.TLSSocket` around it) sees the stream exactly as if the header had
 * never been there. On failure (a bad header, the peer closing or erroring, the timeout) it
 * rejects and leaves the socket to the caller, which closes it. Either way it removes its
 * listeners and its timer.
 */
export function readProxyHeader(
  socket: Socket,
  { timeoutMs, clock = realClock }: ReadProxyHeaderOptions,
): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    const parser = new ProxyHeaderParser();

    const settle = () => {
      clock.clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onClosed);
      socket.off('close', onClosed);
      socket.off('error', onError);
    };
    const fail = (error: Error) => {
      settle();
      reject(error);
    };
    const onError = (error: Error) => fail(error);
    const onClosed = () =>
      fail(
        new ProxyProtocolError(
          'CLOSED',
          parser.buffered === 0
            ? 'connection closed before the PROXY protocol header'
            : `connection closed inside the PROXY protocol header (${parser.buffered} bytes)`,
        ),
      );
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read()) {
        const result = parser.push(chunk);
        if (result.state === 'partial') continue;
        if (result.state === 'error') return fail(result.error);
        settle();
        if (result.rest.length > 0) socket.unshift(result.rest);
        return resolve(result.header);
      }
    };

    const timer = clock.setTimeout(
      () =>
        fail(new ProxyProtocolError('TIMEOUT', `no PROXY protocol header within ${timeoutMs} ms`)),
      timeoutMs,
    );
    if (socket.destroyed || socket.readableEnded) return onClosed();
    // A 'readable' listener puts the socket in paused mode; removing it (settle) puts it back to
    // the fresh state, so a 'data' listener added afterwards starts the flow as usual.
    socket.on('readable', onReadable);
    socket.on('end', onClosed);
    socket.on('close', onClosed);
    socket.on('error', onError);
    // Bytes already buffered may raise no new 'readable' event (a 'readable' listener the caller
    // removed this very tick still counts until the next one): read them now.
    if (socket.readableLength > 0) onReadable();
  });
}
