/**
 * What the client machine needs from a connection. The TCP adapter (socket.ts) implements it over
 * node:net; unit tests implement it in memory. Lines carry no LF: framing is the adapter's job.
 */
export interface Connection {
  send(line: string): void;
  /** Tears the connection down. No further events are delivered for it. */
  close(): void;
}

export interface ConnectionEvents {
  onOpen(): void;
  onLine(line: string): void;
  /** The connection failed or ended; `reason` is for people (e.g. "ECONNREFUSED"). */
  onClose(reason: string): void;
}

/** Opens a connection; its events arrive later, asynchronously. */
export type Connect = (events: ConnectionEvents) => Connection;
