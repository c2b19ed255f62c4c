/**
 * Every limit and default of the server, in one place. Each one is overridable by a CLI flag (and a
 * PARITY_* environment variable) of the same name in kebab-case, and shown in `--help`.
 */
export const SERVER_DEFAULTS = {
  /** Loopback by default: v1 has no authentication, so exposing it must be a deliberate choice. */
  host: '127.0.0.1',
  port: 7070,
  state: 'state/values.json',
  log: 'logs/messages.log',
  /**
   * Longest request line in bytes, not counting LF or CRLF. The longest valid request is
   * `HELLO` + 64-char id; 1 KiB leaves room for typos while bounding per-connection buffering.
   */
  maxLineBytes: 1024,
  /** A connection that sends nothing for this long is closed (`BYE IDLE_TIMEOUT`). */
  idleTimeoutMs: 300_000,
  /** Connections beyond this are refused at accept (`BYE SERVER_BUSY`); fits `ulimit -n` 20000. */
  maxClients: 10_000,
  /**
   * Unsent reply bytes per connection before the server stops reading that peer. Replies are ~8
   * bytes, so a peer that reads at all never gets near it; 10,000 stuck peers cost at most ~640 MiB.
   */
  outputCapBytes: 64 * 1024,
  /** A peer still over the output cap this long after reading stopped is disconnected. */
  drainTimeoutMs: 30_000,
  /**
   * The message log is written in batches: at every state commit (so an acknowledged request is
   * always logged) and at least this often otherwise (PING, EVEN, … replies).
   */
  logFlushMs: 200,
  /** On SIGTERM, peers that have not taken their last replies by then are disconnected. */
  shutdownTimeoutMs: 3_000,
} as const;

export type ServerLimits = {
  maxLineBytes: number;
  idleTimeoutMs: number;
  maxClients: number;
  outputCapBytes: number;
  drainTimeoutMs: number;
  shutdownTimeoutMs: number;
};

/** Longest `line` field written to the message log; longer lines are cut and marked. */
export const LOG_LINE_CAP = 1024;

/** Longest echo of a peer's input inside an ERR reply. */
export const ECHO_CAP = 32;
