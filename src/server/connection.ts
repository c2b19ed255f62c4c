import type { Socket } from 'node:net';
import type { Random } from '../clock.js';
import { LINES_PER_TURN, type ServerLimits } from '../limits.js';
import type { ConnectionLog, MessageLog } from '../log/message-log.js';
import { LineDecoder, lineText } from '../protocol/decoder.js';
import { formatReply, type ByeCode } from '../protocol/replies.js';
import { redactRequestLine } from '../protocol/redact.js';
import { parseRequest, type Verb } from '../protocol/requests.js';
import { randomUUID } from 'node:crypto';
import { IdLimitError, TakenOverError, type ValueStore } from '../store/value-store.js';
import type { Authenticator, ConnectionAuth } from './auth.js';
import type { Monitor } from '../monitor/monitor.js';
import type { ClientWatch } from '../monitor/watch.js';
import { handle, type Session } from './handlers.js';
import { ReplyQueue } from './reply-queue.js';

/** A reply still waiting for the disk counts this much toward the output cap. */
const WAITING_REPLY_BYTES = 16;
/**
 * After our last reply, input is read and discarded this long before the socket is destroyed.
 * Closing with unread input would send RST, which can make the peer lose our final BYE.
 */
export const LINGER_MS = 2_000;
/**
 * ... and at most this much of it: a peer that keeps streaming after our BYE (random bytes cut
 * off by an overlong line) had the server copying ~220 MB/s of input only to discard it, and a
 * well-behaved client's p99 rose to ~300 ms. An honest peer has a few requests in flight at most.
 */
const LINGER_DISCARD_BYTES = 64 * 1024;

/** Requests that change or read stored state: never acknowledged unless their line is logged. */
const LOGGED_BEFORE_HANDLING = new Set<Verb>(['HELLO', 'VALUE']);

export type ConnectionDeps = {
  store: ValueStore;
  random: Random;
  limits: ServerLimits;
  messageLog: MessageLog;
  /** Date.now, read once per turn (clock.ts, turnClock): the message log's clock too. */
  now(): number;
  monitor: Monitor;
  closed(conn: Connection): void;
  /** True while the message log holds more unwritten records than it should take more of. */
  logBacklogged(): boolean;
  /** Calls `conn.resumeAfterLog()` once the log has caught up. */
  waitForLog(conn: Connection): void;
  /** With a users file (--users): AUTH before HELLO. */
  auth?: Authenticator | null;
};

const noop = () => {};

/** The socket adapter: bytes to lines to handlers, replies back in order, limits enforced. */
export class Connection implements Session {
  readonly number: number;
  /** The peer's IP address, for per-address limits. */
  readonly address: string;
  id: string | null = null;
  /** This connection's fencing token in the store: its claims are its own on every server. */
  readonly token = randomUUID();
  readonly auth: ConnectionAuth | null;
  readonly #socket: Socket;
  readonly #deps: ConnectionDeps;
  readonly #decoder: LineDecoder;
  readonly #replies: ReplyQueue;
  #log: ConnectionLog;
  #finishing = false; // no more requests are read; close once the replies are out
  #gone = false; // taken over or closed: requests still held (behind an AUTH) claim nothing
  /** The first claim, until the store answers it (see Session). */
  tentative: Promise<void> | null = null;
  /** Why the last first claim was refused once the store answered (see Session). */
  refusedClaim: IdLimitError | null = null;
  /** A HELLO waiting for `tentative` (see Session). */
  heldIdentity: Promise<void> | null = null;
  #backedUp = false; // paused: the peer is not reading its replies
  #waitingForLog = false; // paused: the message log is behind
  #yielding = false; // paused: this turn's line budget is spent, the others go first
  #pumping = false;
  #blankRun = 0; // blank lines not yet logged (one record per run)
  #lastRequestAt = Date.now();
  #idleTimer: ReturnType<typeof setTimeout> | null = null;
  #peerEnded = false;
  #drainTimer: ReturnType<typeof setTimeout> | null = null;
  #lingerTimer: ReturnType<typeof setTimeout> | null = null;
  #discarded = 0; // bytes read and dropped after our last reply
  #closeReason = 'peer closed';
  readonly #remote: string;
  readonly #watch: ClientWatch;
  #resolveClosed!: () => void;
  /** Settles when the socket has closed, whatever the reason. */
  readonly closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

  /** `peer`: the client's address from a PROXY header, when a balancer relays the connection. */
  constructor(
    socket: Socket,
    number: number,
    deps: ConnectionDeps,
    peer: { address: string; port: number } | null = null,
  ) {
    this.number = number;
    this.address = peer?.address ?? socket.remoteAddress ?? '';
    this.#socket = socket;
    this.#deps = deps;
    this.#decoder = new LineDecoder(deps.limits.maxLineBytes);
    this.#replies = new ReplyQueue((lines) => this.#send(lines));
    this.#log = deps.messageLog.forConnection(number);
    this.#remote = peer
      ? `${peer.address}:${peer.port}`
      : `${socket.remoteAddress}:${socket.remotePort}`;
    this.auth = deps.auth?.forConnection(this.address) ?? null;
    this.#log.event('open', { remote: this.#remote });
    this.#watch = deps.monitor.opened(number, this.#remote);
    socket.setNoDelay(true);
    this.#armIdle(deps.limits.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('drain', () => this.#checkBackPressure());
    socket.on(
      'error',
      (err: NodeJS.ErrnoException) => (this.#closeReason = `error ${err.code ?? err.message}`),
    );
    socket.on('close', () => this.#onClose());
  }

  get store(): ValueStore {
    return this.#deps.store;
  }

  get random(): Random {
    return this.#deps.random;
  }

  claim(id: string): Promise<number> {
    // A HELLO held behind an AUTH check runs late: if this connection was taken over or closed
    // meanwhile, it must not take the id back from the newer connection that now holds it.
    if (this.#gone) return Promise.reject(new TakenOverError(id));
    // Refused before the connection becomes `id`: a VALUE pipelined behind this HELLO must see it
    // as it was (NOT_IDENTIFIED), not as `id` with no claim (it got TAKEN_OVER, and no BYE).
    const refused = this.#deps.store.refuses?.(id) ?? null;
    if (refused !== null) return Promise.reject(refused);
    const first = this.id === null;
    this.id = id;
    if (first) {
      this.#log = this.#deps.messageLog.forConnection(this.number, id);
      this.#deps.monitor.identified(this.number, id);
      this.refusedClaim = null;
    }
    const claimed = this.#deps.store.claim(id, this).catch((err: unknown) => {
      // A full store that says so only later (Redis) claims nothing: the connection is not `id`
      // after all. Requests pipelined meanwhile saw it as `id` (see `tentative`).
      if (err instanceof IdLimitError && first && this.id === id) {
        this.id = null;
        this.refusedClaim = err;
        this.#log = this.#deps.messageLog.forConnection(this.number);
        this.#deps.monitor.identified(this.number, null);
      }
      throw err;
    });
    if (first) {
      const settled = claimed.then(noop, noop);
      this.tentative = settled;
      void settled.then(() => {
        if (this.tentative === settled) this.tentative = null;
      });
    }
    return claimed;
  }

  holdIdentity(until: Promise<unknown>): void {
    const settled = until.then(noop, noop);
    this.heldIdentity = settled;
    void settled.then(() => {
      if (this.heldIdentity === settled) this.heldIdentity = null;
    });
  }

  /** The store says another connection, here or on another server, claimed this one's id. */
  takenOver(): void {
    this.#gone = true;
    this.#deps.monitor.takeover();
    this.finish('TAKEN_OVER', `another connection said HELLO ${this.id}`);
  }

  quit(): void {
    this.#finishing = true;
    this.#closeReason = 'quit';
  }

  /** Stops reading requests, answers those already read, sends the BYE, and closes. */
  finish(code: ByeCode, text: string): void {
    if (this.#finishing) return;
    this.quit();
    this.#closeReason = code;
    this.#replies.push(formatReply({ kind: 'BYE', code, text }));
    this.#endWhenAnswered();
  }

  /** Closes at once, without a reply: the peer is not taking replies. */
  destroy(reason: string): void {
    this.#closeReason = reason;
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#finishing) {
      // Lingering: input after our last reply is discarded, up to a point.
      this.#discarded += chunk.length;
      if (this.#discarded > LINGER_DISCARD_BYTES) this.destroy('kept sending after BYE');
      return;
    }
    this.#decoder.write(chunk);
    this.#pump();
  }

  /**
   * Handles buffered lines until they run out, the connection is closing, or the peer's unread
   * replies pass the output cap. The cap is checked after every line, so a peer that sends a
   * 64 KiB read of requests and reads nothing holds at most the cap in replies; the rest of its
   * read waits, undecoded, until it drains.
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    this.#socket.cork(); // the replies produced here leave in one write
    let drained = false;
    let budget = LINES_PER_TURN;
    while (this.#canRead()) {
      if (budget-- === 0) {
        this.#yieldTurn();
        break;
      }
      if (this.#deps.logBacklogged()) {
        // Checked per line, like the output cap: a peer stops mid-read, not after a 64 KiB chunk
        // of records, so the log's backlog overshoots by at most one line per connection.
        this.#waitingForLog = true;
        this.#socket.pause();
        this.#deps.waitForLog(this);
        break;
      }
      const line = this.#decoder.next();
      if (line === null) {
        drained = true;
        break;
      }
      this.#onLine(line);
      this.#checkBackPressure();
    }
    if (this.#decoder.overflowed) {
      this.finish('LINE_TOO_LONG', `lines are limited to ${this.#decoder.maxLineBytes} bytes`);
    } else if (drained && this.#peerEnded && !this.#finishing) {
      // The peer half-closed: its last unterminated line is a request, then we close.
      for (const line of this.#decoder.end()) this.#onLine(line);
      this.quit();
      this.#closeReason = 'peer half-closed';
    }
    this.#socket.uncork();
    this.#pumping = false;
    this.#endWhenAnswered();
  }

  /** The log has caught up: read this peer again, unless something else holds it. */
  resumeAfterLog(): void {
    this.#waitingForLog = false;
    this.#resumeReading();
  }

  #canRead(): boolean {
    return !this.#finishing && !this.#backedUp && !this.#waitingForLog && !this.#yielding;
  }

  /** Every pause (output cap, log backlog, line budget) ends here, once none of them holds. */
  #resumeReading(): void {
    if (!this.#canRead() || this.#socket.destroyed) return;
    this.#socket.resume();
    this.#pump(); // lines of the last read that waited, undecoded, in the decoder
  }

  /** Lets every other connection, and the commit that answers them, go before more of this one. */
  #yieldTurn(): void {
    this.#yielding = true;
    this.#socket.pause();
    setImmediate(() => {
      this.#yielding = false;
      this.#resumeReading();
    });
  }

  #onLine(line: string): void {
    const parsed = parseRequest(line);
    if (parsed.type === 'blank') {
      this.#blankRun++;
      return;
    }
    this.#logBlankRun();
    // Only requests count as activity: blank lines must not hold a connection open forever.
    this.#lastRequestAt = this.#deps.now();
    this.#watch.request(parsed, this.#lastRequestAt);
    // Never the password of an AUTH line: the log (and its `raw` bytes) get `AUTH <id>` only.
    const { text, raw } = lineText(redactRequestLine(line));
    const logged = this.#log.line('in', text, raw);
    if (parsed.type === 'error') {
      this.#replies.push(formatReply({ kind: 'ERR', code: parsed.code, text: parsed.text }));
    } else if (!logged && LOGGED_BEFORE_HANDLING.has(parsed.request.verb)) {
      // The log dropped this line (its memory cap, a disk refusing writes): an OK or a VALUE
      // without its request line in the log would break the log's promise, so refuse it.
      this.#replies.push(
        formatReply({ kind: 'ERR', code: 'STORAGE', text: 'the message log is full; try again' }),
      );
    } else {
      this.#replies.push(handle(this, parsed.request));
    }
  }

  /** The run ends at the next request or the close, however many turns and reads it spans. */
  #logBlankRun(): void {
    if (this.#blankRun === 0) return;
    this.#log.blank(this.#blankRun);
    this.#blankRun = 0;
  }

  /** The idle check: a timer per connection, re-armed lazily rather than at every request. */
  #armIdle(ms: number): void {
    this.#idleTimer = setTimeout(() => {
      const quiet = Date.now() - this.#lastRequestAt;
      const idle = this.#deps.limits.idleTimeoutMs;
      if (quiet < idle) this.#armIdle(idle - quiet);
      else this.#onTimeout();
    }, ms);
  }

  #onEnd(): void {
    this.#peerEnded = true;
    this.#pump();
  }

  #onTimeout(): void {
    // Already closing but silent this long (replies stuck behind a hung disk): give up on it.
    if (this.#finishing) this.destroy('idle while closing');
    else {
      this.finish('IDLE_TIMEOUT', `no request for ${this.#deps.limits.idleTimeoutMs} ms`);
      this.#armIdle(this.#deps.limits.idleTimeoutMs); // in case the BYE is stuck too
    }
  }

  #send(lines: string[]): void {
    if (this.#socket.destroyed) return;
    for (const line of lines) this.#log.line('out', line);
    this.#watch.replies(lines);
    this.#socket.write(lines.length === 1 ? `${lines[0]}\n` : `${lines.join('\n')}\n`);
    if (this.#finishing) this.#endWhenAnswered();
    else this.#checkBackPressure();
  }

  #endWhenAnswered(): void {
    if (!this.#finishing || this.#replies.waiting > 0 || this.#socket.writableEnded) return;
    this.#socket.end();
    this.#socket.resume(); // drain and discard further input until the peer closes or we time out
    // A hard deadline, not an idle timeout: a peer that keeps sending must not keep us open.
    this.#lingerTimer = setTimeout(() => this.#socket.destroy(), LINGER_MS);
  }

  /** Stops reading a peer whose replies pile up unread; drops it if that lasts too long. */
  #checkBackPressure(): void {
    const queued = this.#socket.writableLength + this.#replies.waiting * WAITING_REPLY_BYTES;
    const over = queued > this.#deps.limits.outputCapBytes;
    if (over && !this.#backedUp) {
      this.#backedUp = true;
      this.#socket.pause();
      this.#drainTimer = setTimeout(
        () => this.destroy('drain timeout'),
        this.#deps.limits.drainTimeoutMs,
      );
    } else if (!over && this.#backedUp) {
      this.#backedUp = false;
      if (this.#drainTimer !== null) clearTimeout(this.#drainTimer);
      this.#drainTimer = null;
      this.#resumeReading();
    }
  }

  #onClose(): void {
    this.#gone = true;
    this.#logBlankRun();
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    if (this.#drainTimer !== null) clearTimeout(this.#drainTimer);
    if (this.#lingerTimer !== null) clearTimeout(this.#lingerTimer);
    this.#log.event('close', { remote: this.#remote, reason: this.#closeReason });
    this.#watch.closed(this.#closeReason);
    if (this.id !== null) this.#deps.store.release(this.id, this);
    this.#deps.closed(this);
    this.#resolveClosed();
  }
}
