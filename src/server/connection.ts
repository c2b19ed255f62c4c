import type { Socket } from 'node:net';
import type { Random } from '../clock.js';
import type { ServerLimits } from '../limits.js';
import type { ConnectionLog, MessageLog } from '../log/message-log.js';
import { LineDecoder } from '../protocol/decoder.js';
import { formatReply, type ByeCode } from '../protocol/replies.js';
import { redactRequestLine } from '../protocol/redact.js';
import { parseRequest } from '../protocol/requests.js';
import type { Store } from '../store/store.js';
import type { Authenticator, ConnectionAuth } from './auth.js';
import { handle, type Session } from './handlers.js';
import { ReplyQueue } from './reply-queue.js';

/** A reply still waiting for the disk counts this much toward the output cap. */
const WAITING_REPLY_BYTES = 16;
/**
 * After our last reply, input is read and discarded this long before the socket is destroyed.
 * Closing with unread input would send RST, which can make the peer lose our final BYE.
 */
export const LINGER_MS = 2_000;

export type ConnectionDeps = {
  store: Store;
  random: Random;
  limits: ServerLimits;
  messageLog: MessageLog;
  /** Registers `conn` as `id`; returns the connection that held it before, if any. */
  claim(id: string, conn: Connection): Connection | undefined;
  closed(conn: Connection): void;
  /** With a users file (--users): AUTH before HELLO. */
  auth?: Authenticator | null;
};

/** The socket adapter: bytes to lines to handlers, replies back in order, limits enforced. */
export class Connection implements Session {
  readonly number: number;
  id: string | null = null;
  readonly auth: ConnectionAuth | null;
  readonly #socket: Socket;
  readonly #deps: ConnectionDeps;
  readonly #decoder: LineDecoder;
  readonly #replies: ReplyQueue;
  #log: ConnectionLog;
  #finishing = false; // no more requests are read; close once the replies are out
  #backedUp = false;
  #pumping = false;
  #peerEnded = false;
  #drainTimer: ReturnType<typeof setTimeout> | null = null;
  #lingerTimer: ReturnType<typeof setTimeout> | null = null;
  #closeReason = 'peer closed';
  readonly #remote: string;
  #resolveClosed!: () => void;
  /** Settles when the socket has closed, whatever the reason. */
  readonly closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

  constructor(socket: Socket, number: number, deps: ConnectionDeps) {
    this.number = number;
    this.#socket = socket;
    this.#deps = deps;
    this.#decoder = new LineDecoder(deps.limits.maxLineBytes);
    this.#replies = new ReplyQueue((lines) => this.#send(lines));
    this.#log = deps.messageLog.forConnection(number);
    this.#remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.auth = deps.auth?.forConnection(socket.remoteAddress ?? '') ?? null;
    this.#log.event('open', { remote: this.#remote });
    socket.setNoDelay(true);
    socket.setTimeout(deps.limits.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('timeout', () => this.#onTimeout());
    socket.on('drain', () => this.#checkBackPressure());
    socket.on(
      'error',
      (err: NodeJS.ErrnoException) => (this.#closeReason = `error ${err.code ?? err.message}`),
    );
    socket.on('close', () => this.#onClose());
  }

  get store(): Store {
    return this.#deps.store;
  }

  get random(): Random {
    return this.#deps.random;
  }

  claim(id: string): void {
    this.id = id;
    this.#log = this.#deps.messageLog.forConnection(this.number, id);
    this.#deps.claim(id, this)?.finish('TAKEN_OVER', `another connection said HELLO ${id}`);
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
    if (this.#finishing) return; // lingering: input after our last reply is discarded
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
    while (!this.#finishing && !this.#backedUp) {
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

  #onLine(line: string): void {
    this.#log.line('in', redactRequestLine(line));
    const parsed = parseRequest(line);
    if (parsed.type === 'blank') return;
    if (parsed.type === 'error') {
      this.#replies.push(formatReply({ kind: 'ERR', code: parsed.code, text: parsed.text }));
    } else {
      this.#replies.push(handle(this, parsed.request));
    }
  }

  #onEnd(): void {
    this.#peerEnded = true;
    this.#pump();
  }

  #onTimeout(): void {
    // Already closing but silent this long (replies stuck behind a hung disk): give up on it.
    if (this.#finishing) this.destroy('idle while closing');
    else this.finish('IDLE_TIMEOUT', `nothing received for ${this.#deps.limits.idleTimeoutMs} ms`);
  }

  #send(lines: string[]): void {
    if (this.#socket.destroyed) return;
    for (const line of lines) this.#log.line('out', line);
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
      if (!this.#finishing) {
        this.#socket.resume();
        this.#pump(); // lines of the last read that waited for the peer to catch up
      }
    }
  }

  #onClose(): void {
    if (this.#drainTimer !== null) clearTimeout(this.#drainTimer);
    if (this.#lingerTimer !== null) clearTimeout(this.#lingerTimer);
    this.#log.event('close', { remote: this.#remote, reason: this.#closeReason });
    this.#deps.closed(this);
    this.#resolveClosed();
  }
}
