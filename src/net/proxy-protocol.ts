import { isIPv4, isIPv6, SocketAddress } from 'node:net';

/**
 * The PROXY protocol header a balancer puts before a connection's first byte (HAProxy's
 * `send-proxy` / `send-proxy-v2`; spec: doc/proxy-protocol.txt in HAProxy's source). Pure: bytes
 * in, one header out, no I/O; `readProxyHeader` (proxy-socket.ts) is the socket adapter.
 *
 * The parser decides as early as the bytes allow: a first byte that starts neither signature, a
 * v2 version or command that does not exist, or a v1 protocol other than TCP4/TCP6/UNKNOWN is an
 * error the moment it arrives, so a plaintext peer is closed at once rather than left waiting.
 * It never holds more than one header's worth of bytes (`PROXY_V1_MAX_BYTES`, or 16 +
 * `PROXY_V2_MAX_LENGTH`).
 */

/** Longest v1 line with CRLF: `PROXY UNKNOWN`, two full IPv6 addresses and two ports (spec 2.1). */
export const PROXY_V1_MAX_BYTES = 107;

/**
 * Most bytes a v2 header may announce after its 16 fixed ones (addresses, then TLVs). The spec has
 * the whole header fit in one MSS; HAProxy's largest (unix addresses, 216 bytes, with every
 * `proxy-v2-options` TLV: authority, unique id, SSL details, CRC) stays well under 2 KiB. A
 * larger announcement is refused before its bytes are read.
 */
export const PROXY_V2_MAX_LENGTH = 2048;

export type ProxyEndpoint = { address: string; port: number };

/**
 * `proxy`: a relayed connection; `source` is the client. `local` (v2 only): the balancer's own
 * connection, a health check. `unknown`: v1 `UNKNOWN`, or a v2 family other than TCP over IPv4 or
 * IPv6. For `local` and `unknown` the socket's own addresses stand, as the spec says.
 */
export type ProxyHeader =
  | {
      kind: 'proxy';
      version: 1 | 2;
      /** As Node's `socket.remoteFamily`. */
      family: 'IPv4' | 'IPv6';
      source: ProxyEndpoint;
      destination: ProxyEndpoint;
    }
  | { kind: 'local'; version: 2 }
  | { kind: 'unknown'; version: 1 | 2 };

/** Stable codes, for logs and tests; the message says what was wrong. */
export type ProxyErrorCode =
  | 'NO_HEADER' // the first bytes start neither signature
  | 'V1_INVALID'
  | 'V1_TOO_LONG' // no CRLF within PROXY_V1_MAX_BYTES
  | 'V2_INVALID'
  | 'V2_TOO_LONG' // the length field is over PROXY_V2_MAX_LENGTH
  | 'TIMEOUT' // readProxyHeader: the header did not arrive in time
  | 'CLOSED'; // readProxyHeader: the peer closed before the header ended

export class ProxyProtocolError extends Error {
  readonly code: ProxyErrorCode;

  constructor(code: ProxyErrorCode, message: string) {
    super(message);
    this.name = 'ProxyProtocolError';
    this.code = code;
  }
}

export type ProxyParseResult =
  | { state: 'partial' }
  /** `rest`: the bytes of the last chunk after the header, the start of the real stream. */
  | { state: 'done'; header: ProxyHeader; rest: Buffer }
  | { state: 'error'; error: ProxyProtocolError };

/** Takes a connection's first chunks until it returns `done` or `error`; one header per parser. */
export class ProxyHeaderParser {
  #held: Buffer = Buffer.alloc(0);
  #finished = false;

  /** Bytes held of a header not yet complete. */
  get buffered(): number {
    return this.#held.length;
  }

  push(chunk: Buffer): ProxyParseResult {
    if (this.#finished) throw new Error('ProxyHeaderParser: the header is already parsed');
    const before = this.#held.length;
    // Only what a header can use is copied; the rest of a large chunk stays where it is.
    this.#held = Buffer.concat([this.#held, chunk.subarray(0, MAX_HEADER_BYTES - before)]);
    const step = parse(this.#held);
    if (step === null) return { state: 'partial' };
    this.#finished = true;
    this.#held = Buffer.alloc(0);
    if (step instanceof ProxyProtocolError) return { state: 'error', error: step };
    // The bytes held before this chunk did not complete the header, so it ends inside this chunk.
    return { state: 'done', header: step.header, rest: chunk.subarray(step.length - before) };
  }
}

type Step = { header: ProxyHeader; length: number } | ProxyProtocolError | null; // null: need more

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V2_FIXED_BYTES = 16;
const MAX_HEADER_BYTES = V2_FIXED_BYTES + PROXY_V2_MAX_LENGTH; // > PROXY_V1_MAX_BYTES
const CR = 0x0d;
const LF = 0x0a;

function parse(bytes: Buffer): Step {
  if (bytes.length === 0) return null;
  if (startsLike(bytes, V1_PREFIX)) return parseV1(bytes);
  if (startsLike(bytes, V2_SIGNATURE)) return parseV2(bytes);
  return new ProxyProtocolError('NO_HEADER', 'no PROXY protocol header');
}

/** True if `bytes` and `prefix` agree as far as both go. */
function startsLike(bytes: Buffer, prefix: Buffer): boolean {
  const n = Math.min(bytes.length, prefix.length);
  return bytes.subarray(0, n).equals(prefix.subarray(0, n));
}

// --- v1: `PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n` -------------------------------------

const V1_PROTOCOLS = ['TCP4', 'TCP6', 'UNKNOWN'];
const invalidV1 = (why: string) =>
  new ProxyProtocolError('V1_INVALID', `invalid PROXY v1 header: ${why}`);

function parseV1(bytes: Buffer): Step {
  for (let i = V1_PREFIX.length; i < bytes.length; i++) {
    // The CRLF must end by byte PROXY_V1_MAX_BYTES: a CR any later has no room for its LF.
    if (i === PROXY_V1_MAX_BYTES - 1) {
      return new ProxyProtocolError('V1_TOO_LONG', 'PROXY v1 header too long');
    }
    const byte = bytes[i]!;
    if (byte === CR) {
      if (i + 1 === bytes.length) return null;
      if (bytes[i + 1] !== LF) return invalidV1('CR without LF');
      return finishV1(bytes.toString('latin1', V1_PREFIX.length, i), i + 2);
    }
    if (byte === LF) return invalidV1('LF without CR');
    if (byte < 0x20 || byte > 0x7e) return invalidV1(`byte 0x${byte.toString(16)}`);
  }
  // No CRLF yet: reject a protocol that is not one of the three as soon as it cannot become one.
  const text = bytes.toString('latin1', V1_PREFIX.length);
  const space = text.indexOf(' ');
  const protocol = space === -1 ? text : text.slice(0, space);
  const possible =
    space === -1
      ? V1_PROTOCOLS.some((p) => p.startsWith(protocol))
      : V1_PROTOCOLS.includes(protocol);
  return possible ? null : invalidV1(`protocol "${protocol}"`);
}

function finishV1(line: string, length: number): Step {
  const fields = line.split(' ');
  const [protocol] = fields;
  // UNKNOWN may be followed by anything, which the receiver must ignore (spec 2.1).
  if (protocol === 'UNKNOWN') return { header: { kind: 'unknown', version: 1 }, length };
  if (protocol !== 'TCP4' && protocol !== 'TCP6') return invalidV1(`protocol "${protocol}"`);
  if (fields.length !== 5) return invalidV1(`${protocol} needs 2 addresses and 2 ports`);
  const family = protocol === 'TCP4' ? 'IPv4' : 'IPv6';
  const source = v1Endpoint(family, fields[1]!, fields[3]!);
  const destination = v1Endpoint(family, fields[2]!, fields[4]!);
  if (source === null || destination === null) {
    return invalidV1(`not ${family} addresses and ports: "${line}"`);
  }
  return { header: { kind: 'proxy', version: 1, family, source, destination }, length };
}

// Decimal 0-65535 without leading zeros (spec 2.1: no octal confusion).
const PORT_RE = /^(0|[1-9][0-9]{0,4})$/;
// Hex, colons and the dots of an embedded IPv4 only: no zone (`%eth0`), which isIPv6 accepts.
const IPV6_CHARS_RE = /^[0-9A-Fa-f:.]+$/;

function v1Endpoint(family: 'IPv4' | 'IPv6', address: string, port: string): ProxyEndpoint | null {
  if (!PORT_RE.test(port) || Number(port) > 65535) return null;
  // Node's isIPv4 already refuses leading zeros, as the spec asks.
  if (family === 'IPv4') return isIPv4(address) ? { address, port: Number(port) } : null;
  if (!IPV6_CHARS_RE.test(address) || !isIPv6(address)) return null;
  return { address: canonicalIPv6(address), port: Number(port) };
}

/** The form Node gives `socket.remoteAddress` (inet_ntop): lower case, longest zero run as `::`. */
function canonicalIPv6(address: string): string {
  return new SocketAddress({ address, family: 'ipv6' }).address;
}

// --- v2: 12-byte signature, version/command, family/transport, length, addresses, TLVs -----------

const LOCAL = 0x0;
const PROXY = 0x1;
const AF_INET = 0x1;
const AF_INET6 = 0x2;
const AF_UNIX = 0x3;
const STREAM = 0x1;
const DGRAM = 0x2;
const invalidV2 = (why: string) =>
  new ProxyProtocolError('V2_INVALID', `invalid PROXY v2 header: ${why}`);

function parseV2(bytes: Buffer): Step {
  if (bytes.length <= V2_SIGNATURE.length) return null;
  const version = bytes[12]! >> 4;
  const command = bytes[12]! & 0x0f;
  if (version !== 2) return invalidV2(`version ${version}`);
  if (command !== LOCAL && command !== PROXY) return invalidV2(`command ${command}`);
  if (bytes.length < 14) return null;
  const family = bytes[13]! >> 4;
  const transport = bytes[13]! & 0x0f;
  // LOCAL ignores the family byte: "the receiver must ... discard the protocol block including
  // the family". For PROXY, values the spec does not define are invalid.
  if (command === PROXY && (family > AF_UNIX || transport > DGRAM)) {
    return invalidV2(`family and transport 0x${bytes[13]!.toString(16).padStart(2, '0')}`);
  }
  if (bytes.length < V2_FIXED_BYTES) return null;
  const length = bytes.readUInt16BE(14);
  if (length > PROXY_V2_MAX_LENGTH) {
    return new ProxyProtocolError(
      'V2_TOO_LONG',
      `PROXY v2 header too long: ${length} bytes of addresses and TLVs, ` +
        `at most ${PROXY_V2_MAX_LENGTH}`,
    );
  }
  // Only TCP over IPv4/IPv6 carries addresses we use; anything else keeps the socket's own
  // (the spec's UNSPEC fallback), and its block is skipped unread.
  const tcp =
    command === PROXY && transport === STREAM && (family === AF_INET || family === AF_INET6);
  const end = V2_FIXED_BYTES + length;
  if (!tcp) {
    if (bytes.length < end) return null;
    return { header: { kind: command === LOCAL ? 'local' : 'unknown', version: 2 }, length: end };
  }
  const ip = family === AF_INET ? IPV4 : IPV6;
  const endpointBytes = 2 * ip.size + 4; // two addresses, two ports
  if (length < endpointBytes) {
    return invalidV2(`${length} bytes cannot hold two ${ip.family} endpoints`);
  }
  if (bytes.length < end) return null;
  // TLVs are skipped, but they must tile the rest of the block exactly: type, length, value.
  for (let i = V2_FIXED_BYTES + endpointBytes; i !== end; i += 3 + bytes.readUInt16BE(i + 1)) {
    if (i + 3 > end) return invalidV2('a TLV runs past the header');
  }
  // Source address, destination address, source port, destination port, in network order.
  const at = V2_FIXED_BYTES;
  const size = ip.size;
  const header: ProxyHeader = {
    kind: 'proxy',
    version: 2,
    family: ip.family,
    source: { address: ip.format(bytes, at), port: bytes.readUInt16BE(at + 2 * size) },
    destination: {
      address: ip.format(bytes, at + size),
      port: bytes.readUInt16BE(at + 2 * size + 2),
    },
  };
  return { header, length: end };
}

type IpFamily = {
  family: 'IPv4' | 'IPv6';
  /** Bytes of one address. */
  size: number;
  format(bytes: Buffer, at: number): string;
};

const IPV4: IpFamily = {
  family: 'IPv4',
  size: 4,
  format: (bytes, at) => [...bytes.subarray(at, at + 4)].join('.'),
};

const IPV6: IpFamily = {
  family: 'IPv6',
  size: 16,
  format: (bytes, at) => {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(at + i).toString(16));
    return canonicalIPv6(groups.join(':'));
  },
};
