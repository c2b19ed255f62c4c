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
   * Connections from one remote address beyond this are refused (`BYE SERVER_BUSY`), so one host
   * cannot take every slot. High enough for a NAT, a test rig or the demo on one machine.
   */
  maxClientsPerAddress: 1_000,
  /**
   * Most ids the state holds; `HELLO` of a new id past it is `ERR ID_LIMIT`. Each id costs every
   * commit and every start: 1M ids is a ~25 MB state file that loads in about a second.
   */
  maxIds: 1_000_000,
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
  /**
   * Most bytes of message-log records held in memory (unwritten, or kept for retry while the disk
   * refuses writes). Readers are paused well before it is reached, so lines are dropped only if the
   * disk stays broken; a dropped request line is answered `ERR STORAGE`, never `OK`.
   */
  logBufferBytes: 16 * 1024 * 1024,
  /** The message log is rotated at a record boundary once it reaches this size; 0 turns it off. */
  logMaxBytes: 1024 * 1024 * 1024,
  /** Rotated logs kept (`messages.log.1` newest … `.N` oldest); older ones are removed. */
  logKeep: 5,
  /** On SIGTERM, peers that have not taken their last replies by then are disconnected. */
  shutdownTimeoutMs: 3_000,
} as const;

/**
 * File descriptors kept free beyond one per client: the listener, state writes (temp file and
 * folder), the message log and its rotation, the lock, stdio. Redis reserves 32 the same way.
 */
export const FD_HEADROOM = 32;

/** Longest timer Node honours; a longer one fires after 1 ms. Every `*-ms` flag is capped by it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export type ServerLimits = {
  maxLineBytes: number;
  idleTimeoutMs: number;
  maxClients: number;
  maxClientsPerAddress: number;
  maxIds: number;
  outputCapBytes: number;
  drainTimeoutMs: number;
  shutdownTimeoutMs: number;
};

/**
 * Lines one connection may have handled in one turn of the event loop before it yields to the
 * others. libuv reads up to 32 × 64 KiB from a busy socket per turn: without a budget, a peer
 * sending bare LFs or pipelined PINGs held the loop for ~2 M lines, and a well-behaved client's
 * p99 rose to 1.5-2 s. 256 lines cost well under a millisecond; an honest pipeline never has as many.
 */
export const LINES_PER_TURN = 256;

/** Longest `line` field written to the message log; longer lines are cut and marked. */
export const LOG_LINE_CAP = 1024;

/** Longest echo of a peer's input inside an ERR reply. */
export const ECHO_CAP = 32;

/** The store's journal and checkpoints (src/store/store.ts). */
export const STORE_DEFAULTS = {
  /**
   * A checkpoint (the whole state file rewritten in the background, the journal started afresh)
   * once the journal holds this many bytes, or half the state file's size if that is more. At ~20
   * bytes a record, 8 MiB is ~400,000 changes, which replay at start in well under a second.
   */
  checkpointBytes: 8 * 1024 * 1024,
  /** …or once the journal is this old (at the next commit), so an idle-ish server's is short. */
  checkpointMs: 10 * 60_000,
  /**
   * Under an open loop (fewer than an eighth of the clients holding an id wait on a commit; the
   * rest send at their own pace, as `bin/client` does), a commit that would follow another at
   * once waits up to this long, or until commitDelayBytes of message-log records wait, so that
   * fewer commits re-dirty the last pages of the journal and the log: at 10,000 spec clients,
   * 40% fewer commits and 1.86–1.88 bytes written per log byte instead of 2.31, for ~2 ms of p50
   * (BENCHMARKS.md). 0 turns it off. A closed loop is never held: the clients it would gather are
   * the ones it keeps waiting.
   */
  commitDelayMs: 3,
  commitDelayBytes: 16 * 1024,
} as const;

/** The Redis store (src/store/redis/), chosen with `--store redis://…`. */
export const REDIS_STORE_DEFAULTS = {
  /**
   * A store call Redis has not answered by then is `ERR STORAGE` (ETIMEDOUT). A healthy Redis
   * answers in well under a millisecond and an fsync takes a few; 2 s is a Redis that has stopped
   * (frozen, swapping, a long fork), not a slow one.
   */
  timeoutMs: 2_000,
  /**
   * Commands sent to Redis and not answered, at most, counted until Redis answers or the
   * connection drops (not until their caller's timeout); past it, calls fail at once (EBUSY).
   * Each costs well under 1 KiB, so a frozen Redis holds at most a few MiB here; a healthy one
   * has a few hundred at 100,000 writes a second.
   */
  maxPending: 10_000,
  /** Replicas that must acknowledge a write (WAIT) before `OK`; 0 does not wait. */
  waitReplicas: 0,
  /**
   * At start, Redis must be reached, have loaded its data (a restarted Redis replays its
   * append-only file first) and answer the persistence check within this; else the server stops.
   */
  openTimeoutMs: 30_000,
  /** Reconnect attempts wait this long at first, doubling up to reconnectMaxMs. */
  reconnectMinMs: 50,
  /** A Redis that comes back is noticed within this long. */
  reconnectMaxMs: 1_000,
  /**
   * TCP keepalive on both connections, so one whose Redis host vanished (no RST, as in a network
   * partition) is eventually closed and reconnected rather than kept forever.
   */
  keepAliveMs: 10_000,
} as const;
