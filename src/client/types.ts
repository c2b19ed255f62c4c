import type { Clock, Random } from '../clock.js';
import type { Connect } from './connection.js';

/** What the client reports; the output adapter turns each into one log line. */
export type ClientEvent =
  | { type: 'connecting'; attempt: number }
  | { type: 'connected' }
  | { type: 'sent'; line: string }
  /** `error` is true for ERR replies, which are shown at error level but do not stop the client. */
  | { type: 'received'; line: string; error: boolean }
  | { type: 'increment'; from: number; to: number }
  | { type: 'disconnected'; reason: string }
  | { type: 'reconnecting'; delayMs: number; attempt: number }
  /** Something the server should never do (an unparsable reply); the connection is dropped. */
  | { type: 'protocol-error'; reason: string }
  | { type: 'stopping'; reason: string }
  | { type: 'stopped'; code: number; reason: string; value: number | null };

/** How the client ended: the process exit code, why, and the counter's last value (null if none). */
export type ClientResult = { code: number; reason: string; value: number | null };

/** Timings of the client machine; defaults.ts has their values. */
export type ClientOptions = {
  id: string;
  /** Sent as `AUTH id password` before HELLO on every connection when set. */
  password?: string | undefined;
  tickMs: number;
  switchMinMs: number;
  switchMaxMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  quitTimeoutMs: number;
};

/** What the machine is given rather than reaching for: the clock, randomness, the network. */
export type ClientDeps = {
  clock: Clock;
  random: Random;
  connect: Connect;
  emit: (event: ClientEvent) => void;
};
