import { SERVER_DEFAULTS } from '../limits.js';

/**
 * Every timing and limit of the client, in one place. The first five are CLI flags (and PARITY_*
 * environment variables) of the same name in kebab-case, shown in `--help`.
 */
export const CLIENT_DEFAULTS = {
  /** The same as the server's, so `bin/server` and `bin/client` find each other with no flags. */
  host: SERVER_DEFAULTS.host,
  port: SERVER_DEFAULTS.port,
  /** One VALUE per tick; tick k is due at origin + k × tickMs (see ticker.ts). */
  tickMs: 500,
  /** The delay before each EVEN/ODD is drawn uniformly from [switchMinMs, switchMaxMs]. */
  switchMinMs: 3_000,
  switchMaxMs: 5_000,
  /**
   * Reconnect backoff. Attempt k (0-based) waits a uniform draw from
   * [0.5, 1] × min(backoffMaxMs, backoffBaseMs × 2^k): "equal jitter". Half of the step is kept so a
   * restarted server is not hammered, and the random half spreads clients that all lost the same
   * server so they do not reconnect in lockstep. The step resets after a successful HELLO.
   */
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  /** On SIGINT/SIGTERM the client sends QUIT and waits this long for BYE before it exits anyway. */
  quitTimeoutMs: 1_000,
  /** A connect that neither succeeds nor fails this long (a black-holed SYN) is abandoned, retried. */
  connectTimeoutMs: 5_000,
  /**
   * Longest reply line accepted. Replies are under 100 bytes; the cap only bounds what a broken or
   * hostile server can make the client buffer. A longer line drops the connection.
   */
  maxReplyBytes: SERVER_DEFAULTS.maxLineBytes,
} as const;

/** Exit codes of `bin/client`. */
export const EXIT = {
  ok: 0,
  /** The server ended the session for good (`BYE TAKEN_OVER`, `BYE LINE_TOO_LONG`). */
  fatal: 1,
  usage: 2,
} as const;

/** BYE codes after which reconnecting would be wrong: another client owns the id, or ours is broken. */
export const FATAL_BYE_CODES: ReadonlySet<string> = new Set(['TAKEN_OVER', 'LINE_TOO_LONG']);
