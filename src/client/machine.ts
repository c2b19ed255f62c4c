import type { TimerHandle } from '../clock.js';
import { redactRequestLine } from '../protocol/redact.js';
import { parseReply, type Reply } from '../protocol/replies.js';
import { echo } from '../protocol/syntax.js';
import { Backoff } from './backoff.js';
import type { Connection } from './connection.js';
import { EXIT, FATAL_BYE_CODES } from './defaults.js';
import type { ClientDeps, ClientOptions, ClientResult } from './types.js';
import { isFatalAuthReply } from './security.js';
import { Session } from './session.js';
import { Ticker } from './ticker.js';

/** waiting = backoff timer set; hello = HELLO sent, no VALUE yet; quitting = QUIT sent. */
type State = 'idle' | 'connecting' | 'hello' | 'running' | 'waiting' | 'quitting' | 'done';

/**
 * The client's lifecycle: connect, HELLO, run a Session, and on any loss wait (backoff) and start
 * over. Clock, random source and connection are injected, so tests drive it by hand.
 */
export class Client {
  readonly done: Promise<ClientResult>;
  readonly #options: ClientOptions;
  readonly #deps: ClientDeps;
  readonly #backoff: Backoff;
  readonly #ticker: Ticker;
  #state: State = 'idle';
  #conn: Connection | null = null;
  /** Bumped whenever the connection is dropped, so its late events are ignored. */
  #generation = 0;
  #session: Session | null = null;
  #value: number | null = null;
  #timer: TimerHandle | null = null;
  #resolve!: (result: ClientResult) => void;

  constructor(options: ClientOptions, deps: ClientDeps) {
    this.#options = options;
    this.#deps = deps;
    this.#backoff = new Backoff(
      { baseMs: options.backoffBaseMs, maxMs: options.backoffMaxMs },
      deps.random,
    );
    this.#ticker = new Ticker(deps.clock, options.tickMs, () => this.#tick());
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** The counter's last value: the server's at HELLO, then each value sent. */
  get value(): number | null {
    return this.#value;
  }

  start(): Promise<ClientResult> {
    if (this.#state === 'idle') this.#connect();
    return this.done;
  }

  /** Graceful stop: QUIT, then exit 0 on BYE, on close, or after quitTimeoutMs, whichever is first. */
  stop(reason = 'stopped'): void {
    if (this.#state === 'done' || this.#state === 'quitting') return;
    this.#deps.emit({ type: 'stopping', reason });
    if (this.#state !== 'hello' && this.#state !== 'running') {
      this.#finish(EXIT.ok, reason);
      return;
    }
    this.#ticker.stop();
    this.#session?.close();
    this.#state = 'quitting';
    this.#send('QUIT');
    const ms = this.#options.quitTimeoutMs;
    this.#timer = this.#deps.clock.setTimeout(
      () => this.#finish(EXIT.ok, `${reason}; no BYE within ${ms} ms`),
      ms,
    );
  }

  #connect(): void {
    this.#state = 'connecting';
    const generation = this.#generation;
    const live = () => generation === this.#generation;
    this.#deps.emit({ type: 'connecting', attempt: this.#backoff.attempt });
    this.#conn = this.#deps.connect({
      onOpen: () => live() && this.#onOpen(),
      onLine: (line) => live() && this.#onLine(line),
      onClose: (reason) => live() && this.#onClose(reason),
    });
  }

  #onOpen(): void {
    this.#state = 'hello';
    this.#deps.emit({ type: 'connected' });
    const { id, password } = this.#options;
    if (password !== undefined) this.#send(`AUTH ${id} ${password}`); // pipelined with HELLO
    this.#send(`HELLO ${id}`);
  }

  #onLine(line: string): void {
    const reply = parseReply(line);
    this.#deps.emit({ type: 'received', line, error: reply?.kind === 'ERR' });
    if (reply === null) {
      this.#deps.emit({ type: 'protocol-error', reason: `unparsable reply ${echo(line)}` });
      this.#lost('protocol error');
    } else if (reply.kind === 'BYE') {
      this.#onBye(reply, line);
    } else if (isFatalAuthReply(reply)) {
      this.#finish(EXIT.fatal, `server said ${line}`);
    } else if (reply.kind === 'AUTHED') {
      // The answer to our AUTH; the VALUE answering HELLO follows.
    } else if (this.#state === 'hello') {
      if (reply.kind === 'VALUE') this.#begin(reply.value);
      else this.#lost(`HELLO not accepted: ${line}`);
    } else if (this.#state === 'running' && (reply.kind === 'EVEN' || reply.kind === 'ODD')) {
      this.#session?.setIncrement(reply.value);
    }
    // OK needs nothing; an ERR was shown above and the client carries on.
  }

  #onBye(reply: Extract<Reply, { kind: 'BYE' }>, line: string): void {
    if (this.#state === 'quitting') this.#finish(EXIT.ok, `server said ${line}`);
    else if (reply.code !== null && FATAL_BYE_CODES.has(reply.code)) {
      this.#finish(EXIT.fatal, `server said ${line}`);
    } else this.#lost(`server said ${line}`);
  }

  #onClose(reason: string): void {
    if (this.#state === 'quitting') this.#finish(EXIT.ok, `connection closed (${reason})`);
    else this.#lost(reason);
  }

  /** The server's VALUE is authoritative: each connection starts the counter afresh from it. */
  #begin(value: number): void {
    this.#backoff.reset();
    this.#state = 'running';
    this.#value = value;
    const { clock, random, emit } = this.#deps;
    const timing = this.#options;
    this.#session = new Session({ clock, random, emit, timing, send: (l) => this.#send(l) }, value);
    this.#ticker.start();
  }

  /** The ticker runs only while a session does: started in #begin, stopped in #drop. */
  #tick(): void {
    const session = this.#session!;
    session.tick();
    this.#value = session.counter;
  }

  #send(line: string): void {
    this.#deps.emit({ type: 'sent', line: redactRequestLine(line) });
    this.#conn?.send(line);
  }

  #lost(reason: string): void {
    this.#drop();
    this.#deps.emit({ type: 'disconnected', reason });
    const delayMs = this.#backoff.next();
    this.#state = 'waiting';
    this.#deps.emit({ type: 'reconnecting', delayMs, attempt: this.#backoff.attempt });
    this.#timer = this.#deps.clock.setTimeout(() => {
      this.#timer = null;
      this.#connect();
    }, delayMs);
  }

  #drop(): void {
    this.#ticker.stop();
    this.#session?.close();
    this.#session = null;
    this.#generation++;
    this.#conn?.close();
    this.#conn = null;
  }

  /** Runs once: every path here clears the timers and drops the connection, so nothing calls back. */
  #finish(code: number, reason: string): void {
    if (this.#timer !== null) this.#deps.clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#drop();
    this.#state = 'done';
    const value = this.#value;
    this.#deps.emit({ type: 'stopped', code, reason, value });
    this.#resolve({ code, reason, value });
  }
}
