import type { Socket } from 'node:net';
import { FD_HEADROOM, type ServerLimits } from '../limits.js';
import type { MessageLog } from '../log/message-log.js';
import type { Monitor, RefusalReason } from '../monitor/monitor.js';
import type { ProxyEndpoint } from '../net/proxy-protocol.js';
import { PROXY_HEADER_TIMEOUT_MS, readProxyHeader } from '../net/proxy-socket.js';
import { formatReply } from '../protocol/replies.js';
import { LINGER_MS, type Connection } from './connection.js';
import { Handshakes } from './handshakes.js';

export type AdmissionDeps = {
  limits: ServerLimits;
  monitor: Monitor;
  messageLog: MessageLog;
  /** Behind a balancer: every connection starts with a PROXY header. */
  proxyProtocol: boolean;
  /** Serves an admitted socket as connection `number`. */
  connect(socket: Socket, number: number, peer: ProxyEndpoint | null): Connection;
};

const REFUSALS = {
  stopping: { code: 'SHUTTING_DOWN', text: 'the server is stopping' },
  'max-clients': { code: 'SERVER_BUSY', text: 'too many clients' },
  'max-clients-per-address': { code: 'SERVER_BUSY', text: 'too many clients from your address' },
} as const;

/**
 * Refused sockets that may linger at once. Each holds a descriptor, and refusals come in bursts
 * exactly when the server is at its limit: 300 at once under `ulimit -n 256` took the descriptors
 * a served client's commit needed (ERR STORAGE, EMFILE). Past this many, a refusal closes as soon
 * as its BYE is written, at the risk of a reset that loses the BYE.
 */
const MAX_LINGERING_REFUSALS = FD_HEADROOM / 2;

/**
 * Who is served: --max-clients and --max-clients-per-address, applied at accept to every peer
 * that holds a descriptor, served or not yet (a PROXY header or a TLS handshake under way), and
 * the refusals that follow. Connections are numbered here, refused ones too, so that each has
 * its own `conn` in the message log.
 */
export class Admission {
  /** The connections being served. */
  readonly open = new Set<Connection>();
  /** Set once the server starts to stop: every new peer is refused. */
  stopping = false;
  readonly #deps: AdmissionDeps;
  readonly #perAddress = new Map<string, number>();
  readonly #handshakes = new Handshakes(); // stays empty without TLS
  #readingHeader = 0;
  #count = 0;
  readonly #lingering = { count: 0 }; // refused sockets still reading their peer's last bytes

  constructor(deps: AdmissionDeps) {
    this.#deps = deps;
  }

  /** A socket ready for the protocol (TLS: its handshake done); behind a balancer, header first. */
  serve(socket: Socket): void {
    if (this.#deps.proxyProtocol) this.#serveProxied(socket);
    else this.#serveSocket(socket, null);
  }

  /**
   * With TLS, before the handshake: a peer past a limit is closed at once, with no BYE (it could
   * only be sent inside a finished handshake); false then. Behind a balancer the address is the
   * balancer's (the client's is in the PROXY header, read later), so only --max-clients applies.
   */
  admitHandshake(raw: Socket): boolean {
    const address = raw.remoteAddress ?? '';
    const fromAddress = this.#deps.proxyProtocol
      ? 0
      : (this.#perAddress.get(address) ?? 0) + this.#handshakes.from(address);
    const reason = this.#refusal(this.open.size + this.#readingHeader, fromAddress);
    if (reason === null) {
      this.#handshakes.add(raw);
      return true;
    }
    this.#deps.monitor.refuse(reason);
    this.refused(raw, REFUSALS[reason].code, { limit: reason });
    raw.on('error', () => {});
    raw.destroy();
    return false;
  }

  /** The TLS handshake of `socket` is over: it no longer counts as one. */
  handshakeDone(socket: Socket): void {
    this.#handshakes.done(socket);
  }

  /** Logs a peer turned away before it became a connection (a failed handshake, a bad header). */
  refused(socket: Socket, reason: string, extra: Record<string, unknown> = {}): void {
    this.#deps.messageLog.forConnection(++this.#count).event('refused', {
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      reason,
      ...extra,
    });
  }

  /** `conn` closed: its slot, and its address's, are free. */
  closed(conn: Connection): void {
    this.open.delete(conn);
    const left = (this.#perAddress.get(conn.address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(conn.address, left);
    else this.#perAddress.delete(conn.address);
  }

  /** Why a peer is refused, if it is; handshakes under way count as connections (handshakes.ts). */
  #refusal(served: number, fromAddress: number): RefusalReason | null {
    const { maxClients, maxClientsPerAddress } = this.#deps.limits;
    if (this.stopping) return 'stopping';
    if (served + this.#handshakes.size >= maxClients) return 'max-clients';
    if (fromAddress >= maxClientsPerAddress) return 'max-clients-per-address';
    return null;
  }

  #serveSocket(socket: Socket, peer: ProxyEndpoint | null): void {
    const number = ++this.#count;
    const address = peer?.address ?? socket.remoteAddress ?? '';
    const fromAddress = this.#perAddress.get(address) ?? 0;
    const reason = this.#refusal(this.open.size, fromAddress);
    if (reason !== null) {
      this.#deps.monitor.refuse(reason);
      this.#refuse(socket, number, reason);
      return;
    }
    this.#perAddress.set(address, fromAddress + 1);
    this.open.add(this.#deps.connect(socket, number, peer));
  }

  /**
   * Behind a balancer the peer's address is in the PROXY header, read before anything else. A
   * connection without a valid one is closed; one still silent after the timeout too. Those
   * waiting count toward --max-clients, so silent peers cannot hold every descriptor.
   */
  #serveProxied(socket: Socket): void {
    if (this.open.size + this.#readingHeader >= this.#deps.limits.maxClients) {
      this.#deps.monitor.refuse('max-clients');
      this.#refuse(socket, ++this.#count, 'max-clients');
      return;
    }
    this.#readingHeader++;
    readProxyHeader(socket, { timeoutMs: PROXY_HEADER_TIMEOUT_MS }).then(
      (header) => {
        this.#readingHeader--;
        // LOCAL: the balancer's own health check, served as itself.
        this.#serveSocket(socket, header.kind === 'proxy' ? header.source : null);
      },
      (err: unknown) => {
        this.#readingHeader--;
        socket.on('error', () => {});
        this.refused(socket, `proxy protocol: ${(err as Error).message}`);
        socket.destroy();
      },
    );
  }

  /** Over a client limit (or stopping): one BYE and close, without a Connection. */
  #refuse(socket: Socket, number: number, reason: RefusalReason): void {
    const { code, text } = REFUSALS[reason];
    const line = formatReply({ kind: 'BYE', code, text });
    const log = this.#deps.messageLog.forConnection(number);
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    log.event('refused', { remote, reason: code, limit: reason });
    log.line('out', line);
    socket.on('error', () => {});
    socket.end(`${line}\n`);
    const lingering = this.#lingering;
    if (lingering.count >= MAX_LINGERING_REFUSALS) {
      socket.once('finish', () => socket.destroy());
      return;
    }
    lingering.count++;
    socket.once('close', () => lingering.count--);
    socket.setTimeout(LINGER_MS, () => socket.destroy());
    socket.resume();
  }
}
