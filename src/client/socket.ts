import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { LineDecoder } from '../protocol/decoder.js';
import type { Connect } from './connection.js';

export type TcpOptions = {
  host: string;
  port: number;
  /** Longest reply line accepted; a longer one drops the connection. */
  maxReplyBytes: number;
  /** A connect still pending after this long is abandoned. */
  connectTimeoutMs: number;
  /** TLS instead of plaintext (CA, client certificate); null or absent: plaintext. */
  tls?: ConnectionOptions | null;
};

/**
 * The TCP adapter: node:net below, the client machine's Connection above. It frames lines with the
 * protocol's own LineDecoder; everything else (what to send, what a reply means) is the machine's.
 */
export function tcpConnector(options: TcpOptions): Connect {
  return (events) => {
    const { host, port, tls } = options;
    const socket = tls ? tlsConnect({ ...tls, host, port }) : netConnect({ host, port });
    const decoder = new LineDecoder(options.maxReplyBytes);
    let reason = 'connection closed by the server';
    socket.setNoDelay(true);
    socket.setTimeout(options.connectTimeoutMs, () => {
      reason = `no connection within ${options.connectTimeoutMs} ms`;
      socket.destroy();
    });
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      socket.setTimeout(0);
      events.onOpen();
    });
    const deliver = (lines: string[]) => {
      for (const line of lines) {
        if (socket.destroyed) return; // the machine closed us in reaction to an earlier line
        events.onLine(line);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      deliver(decoder.push(chunk));
      if (decoder.overflowed && !socket.destroyed) {
        reason = `reply longer than ${options.maxReplyBytes} bytes`;
        socket.destroy();
      }
    });
    // The server closed its side: a last unterminated line still counts, as in protocol.md.
    socket.on('end', () => deliver(decoder.end()));
    socket.on('error', (err: NodeJS.ErrnoException) => (reason = err.code ?? err.message));
    socket.on('close', () => events.onClose(reason));
    return {
      send: (line) => {
        if (socket.writable) socket.write(`${line}\n`);
      },
      close: () => socket.destroy(),
    };
  };
}
