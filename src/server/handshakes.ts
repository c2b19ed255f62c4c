import type { Socket } from 'node:net';

/**
 * TLS connections still in their handshake, by remote address. Only a finished handshake reaches
 * the connection handler, where --max-clients and --max-clients-per-address are applied, yet a
 * peer in its handshake holds a descriptor all the same: uncounted, 400 silent TLS peers took
 * every descriptor of a server fitted to 249 clients, and one address held 100 past its cap of 50.
 * So they count toward both limits, as peers still sending a PROXY header count toward the first.
 */
export class Handshakes {
  readonly #byPeer = new Map<string, { socket: Socket; address: string }>();
  readonly #byAddress = new Map<string, number>();

  /** Handshakes under way. */
  get size(): number {
    return this.#byPeer.size;
  }

  /** Handshakes under way from `address`. */
  from(address: string): number {
    return this.#byAddress.get(address) ?? 0;
  }

  /** Counts a raw socket until its handshake ends (`done`) or it closes. */
  add(socket: Socket): void {
    const address = socket.remoteAddress;
    if (address === undefined) return; // reset before it was accepted: it closes at once
    const key = peer(socket);
    this.#remove(key, null); // a closed socket whose `close` has not come yet: it goes first
    this.#byPeer.set(key, { socket, address });
    this.#byAddress.set(address, this.from(address) + 1);
    socket.once('close', () => this.#remove(key, socket));
  }

  /** The handshake of this TLS socket (the same peer as its raw socket) is over. */
  done(socket: Socket): void {
    this.#remove(peer(socket), null);
  }

  #remove(key: string, only: Socket | null): void {
    const entry = this.#byPeer.get(key);
    // A raw socket's late `close` must not uncount a newer peer that reuses its address and port.
    if (entry === undefined || (only !== null && entry.socket !== only)) return;
    this.#byPeer.delete(key);
    const left = this.from(entry.address) - 1;
    if (left > 0) this.#byAddress.set(entry.address, left);
    else this.#byAddress.delete(entry.address);
  }
}

/**
 * Both ends, address and port: unique among open TCP connections (one client port may reach two
 * of the server's addresses), and a TLS socket and the raw socket under it report the same.
 */
const peer = (socket: Socket) =>
  `${socket.remoteAddress}:${socket.remotePort}>${socket.localAddress}:${socket.localPort}`;
