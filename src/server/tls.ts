import { promises as fsp } from 'node:fs';
import type { ServerOpts, Socket } from 'node:net';
import {
  createSecureContext,
  createServer,
  type SecureContextOptions,
  type Server,
} from 'node:tls';

/** PEM files: the server's certificate chain and key, and optionally a CA to require client certs. */
export type TlsPaths = { cert: string; key: string; ca?: string };

export const TLS_DEFAULTS = {
  /**
   * A peer that has not finished the TLS handshake by then is dropped (`--tls-handshake-timeout-ms`).
   * Node's own default is 120 s, long enough for silent peers to hold many slots; a real handshake
   * takes a few round trips.
   */
  handshakeTimeoutMs: 10_000,
};

/** Reads the PEM files and proves they make a context, so a bad key fails now, not per client. */
export async function loadTlsMaterial(paths: TlsPaths): Promise<SecureContextOptions> {
  const [cert, key, ca] = await Promise.all([
    fsp.readFile(paths.cert),
    fsp.readFile(paths.key),
    paths.ca === undefined ? undefined : fsp.readFile(paths.ca),
  ]);
  const material = { cert, key, ...(ca === undefined ? {} : { ca }) };
  createSecureContext(material);
  return material;
}

/**
 * A node:tls server over the same connection handler as plaintext. With a CA the server requires
 * a client certificate signed by it. A peer that fails the handshake (plaintext, no or a bad
 * certificate, too slow) never reaches `onConnection`; `onRefused` hears why. `admit` sees each
 * TCP socket before its handshake starts; one it refuses it must close itself.
 */
export function createTlsServer(
  material: SecureContextOptions,
  options: ServerOpts & { handshakeTimeoutMs: number },
  onConnection: (socket: Socket) => void,
  onRefused: (socket: Socket, reason: string) => void,
  admit: (raw: Socket) => boolean,
): Server {
  const { handshakeTimeoutMs, ...serverOpts } = options;
  const server = createServer(
    {
      ...serverOpts,
      ...material,
      requestCert: material.ca !== undefined,
      rejectUnauthorized: true,
      handshakeTimeout: handshakeTimeoutMs,
    },
    onConnection,
  );
  // tls.Server starts each handshake in its own 'connection' listener (the TCP socket, before
  // the handshake, as the docs describe the event). `admit` runs first, so a peer it refuses, and
  // closes, costs no TLS state and raises no handshake error of its own.
  const handshake = server.listeners('connection') as Array<(raw: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (raw: Socket) => {
    if (admit(raw)) for (const start of handshake) start.call(server, raw);
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const reason = err.code ?? err.message;
    onRefused(socket, `tls handshake failed: ${reason}`);
    socket.destroy();
  });
  return server;
}
