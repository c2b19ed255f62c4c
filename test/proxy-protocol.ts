import t from 'tap';
import fc from 'fast-check';
import { isIPv6 } from 'node:net';
import {
  PROXY_V1_MAX_BYTES,
  PROXY_V2_MAX_LENGTH,
  ProxyHeaderParser,
  type ProxyHeader,
  type ProxyParseResult,
} from '../src/net/proxy-protocol.js';
import {
  ip4,
  ip6,
  proxyV2Tcp4,
  tlv,
  u16,
  V2_LOCAL,
  V2_SIGNATURE as SIG,
  v2Header as v2,
} from './fixtures/proxy-header.js';

const V2_TCP4 = proxyV2Tcp4(
  { address: '192.168.0.1', port: 56324 },
  { address: '10.0.0.2', port: 7070 },
);

const ascii = (s: string) => Buffer.from(s, 'latin1');

/** Pushes the chunks in order; returns every result. */
function feed(parser: ProxyHeaderParser, ...chunks: Buffer[]): ProxyParseResult[] {
  return chunks.map((c) => parser.push(c));
}

/** The first result that is not partial, feeding `bytes` cut at `cuts`. */
function parseCut(bytes: Buffer, cuts: number[]): ProxyParseResult {
  const parser = new ProxyHeaderParser();
  let result: ProxyParseResult = { state: 'partial' };
  for (const [from, to] of [0, ...cuts].map((c, i, all) => [c, all[i + 1] ?? bytes.length])) {
    result = parser.push(bytes.subarray(from, to));
    if (result.state !== 'partial') break;
  }
  return result;
}

const done = (result: ProxyParseResult) => {
  if (result.state !== 'done') throw new Error(`expected a header, got ${JSON.stringify(result)}`);
  return result;
};

const errorOf = (result: ProxyParseResult | undefined) => {
  if (result?.state !== 'error')
    throw new Error(`expected an error, got ${JSON.stringify(result)}`);
  return { code: result.error.code, message: result.error.message };
};

/** Parses one whole chunk. */
const parseOne = (bytes: Buffer) => new ProxyHeaderParser().push(bytes);

// --- valid headers -----------------------------------------------------------------------------

type Sample = { name: string; bytes: Buffer; header: ProxyHeader };

const SAMPLES: Sample[] = [
  {
    name: 'v1 TCP4',
    bytes: ascii('PROXY TCP4 192.168.0.1 10.0.0.2 56324 7070\r\n'),
    header: {
      kind: 'proxy',
      version: 1,
      family: 'IPv4',
      source: { address: '192.168.0.1', port: 56324 },
      destination: { address: '10.0.0.2', port: 7070 },
    },
  },
  {
    name: 'v1 TCP6, written long and in upper case',
    bytes: ascii('PROXY TCP6 2001:DB8:0:0:0:0:0:1 0:0:0:0:0:0:0:1 0 65535\r\n'),
    header: {
      kind: 'proxy',
      version: 1,
      family: 'IPv6',
      source: { address: '2001:db8::1', port: 0 },
      destination: { address: '::1', port: 65535 },
    },
  },
  {
    name: 'v1 TCP6 with an IPv4-mapped address',
    bytes: ascii('PROXY TCP6 ::ffff:127.0.0.1 ::1 1 2\r\n'),
    header: {
      kind: 'proxy',
      version: 1,
      family: 'IPv6',
      source: { address: '::ffff:127.0.0.1', port: 1 },
      destination: { address: '::1', port: 2 },
    },
  },
  {
    name: 'v1 UNKNOWN',
    bytes: ascii('PROXY UNKNOWN\r\n'),
    header: { kind: 'unknown', version: 1 },
  },
  {
    name: 'v1 UNKNOWN of the longest length, whose rest is ignored',
    bytes: ascii(`PROXY UNKNOWN ${'f'.repeat(PROXY_V1_MAX_BYTES - 16)}\r\n`),
    header: { kind: 'unknown', version: 1 },
  },
  {
    name: 'v2 PROXY TCP4',
    bytes: V2_TCP4,
    header: {
      kind: 'proxy',
      version: 2,
      family: 'IPv4',
      source: { address: '192.168.0.1', port: 56324 },
      destination: { address: '10.0.0.2', port: 7070 },
    },
  },
  {
    name: 'v2 PROXY TCP6',
    bytes: v2(
      0x21,
      0x21,
      ip6('2001:0db8:0000:0000:0001:0000:0000:0001'),
      ip6('0000:0000:0000:0000:0000:ffff:7f00:0001'),
      u16(443),
      u16(7070),
    ),
    header: {
      kind: 'proxy',
      version: 2,
      family: 'IPv6',
      source: { address: '2001:db8::1:0:0:1', port: 443 },
      destination: { address: '::ffff:127.0.0.1', port: 7070 },
    },
  },
  {
    name: 'v2 PROXY TCP4 with TLVs (authority, an empty NOOP, unique id)',
    bytes: v2(
      0x21,
      0x11,
      ip4('1.2.3.4'),
      ip4('5.6.7.8'),
      u16(1),
      u16(2),
      tlv(0x02, ascii('parity.example')),
      tlv(0x04, Buffer.alloc(0)),
      tlv(0x05, Buffer.alloc(128, 7)),
    ),
    header: {
      kind: 'proxy',
      version: 2,
      family: 'IPv4',
      source: { address: '1.2.3.4', port: 1 },
      destination: { address: '5.6.7.8', port: 2 },
    },
  },
  // What HAProxy 2.6 sends on a health check with send-proxy-v2 (see test/haproxy.ts).
  { name: 'v2 LOCAL, as HAProxy sends it', bytes: V2_LOCAL, header: { kind: 'local', version: 2 } },
  {
    name: 'v2 LOCAL with an address block and a family byte it ignores',
    bytes: v2(0x20, 0xff, Buffer.alloc(12)),
    header: { kind: 'local', version: 2 },
  },
  {
    name: 'v2 PROXY UNSPEC',
    bytes: v2(0x21, 0x00, Buffer.alloc(5)),
    header: { kind: 'unknown', version: 2 },
  },
  {
    name: 'v2 PROXY over a unix socket',
    bytes: v2(0x21, 0x31, Buffer.alloc(216)),
    header: { kind: 'unknown', version: 2 },
  },
  {
    name: 'v2 PROXY UDP over IPv4',
    bytes: v2(0x21, 0x12, ip4('1.2.3.4'), ip4('5.6.7.8'), u16(1), u16(2)),
    header: { kind: 'unknown', version: 2 },
  },
  {
    name: 'v2 with the longest length allowed',
    bytes: v2(0x21, 0x11, Buffer.alloc(12), tlv(0x04, Buffer.alloc(PROXY_V2_MAX_LENGTH - 15))),
    header: {
      kind: 'proxy',
      version: 2,
      family: 'IPv4',
      source: { address: '0.0.0.0', port: 0 },
      destination: { address: '0.0.0.0', port: 0 },
    },
  },
];

// Looks like a header (a v2 signature, CRLF, NUL) to make sure the rest is passed on untouched.
const AFTER = Buffer.concat([ascii('PING\r\nHELLO alice\n'), SIG, Buffer.from([0, 0xff])]);

t.test('each header parses in one chunk; the bytes after it are passed on untouched', async (t) => {
  for (const { name, bytes, header } of SAMPLES) {
    const alone = done(parseOne(bytes));
    t.same(alone.header, header, name);
    t.equal(alone.rest.length, 0, `${name}: nothing after it`);
    const followed = done(parseOne(Buffer.concat([bytes, AFTER])));
    t.same(followed.header, header, `${name}, followed by data`);
    t.same(followed.rest, AFTER, `${name}: the data after it`);
  }
});

t.test('each header gives the same result cut at every byte boundary', async (t) => {
  for (const { name, bytes, header } of SAMPLES) {
    const input = Buffer.concat([bytes, AFTER]);
    const n = input.length;
    const wrong: string[] = [];
    // Two cuts anywhere for short headers; one cut for long ones, to keep it quick.
    for (let i = 0; i <= n; i++) {
      for (let j = i; j <= n; j += n > 200 ? n : 1) {
        const result = done(parseCut(input, [i, j]));
        // `rest` is what follows the header in the chunk that completed it.
        const chunkEnd = bytes.length <= i ? i : bytes.length <= j ? j : n;
        if (JSON.stringify(result.header) !== JSON.stringify(header))
          wrong.push(`header ${i},${j}`);
        if (!result.rest.equals(input.subarray(bytes.length, chunkEnd)))
          wrong.push(`rest ${i},${j}`);
      }
    }
    t.same(wrong, [], name);
  }
});

t.test('byte at a time: partial until the last byte of the header', async (t) => {
  for (const { name, bytes, header } of SAMPLES) {
    const parser = new ProxyHeaderParser();
    const results = feed(parser, ...[...bytes].map((b) => Buffer.from([b])));
    t.ok(
      results.slice(0, -1).every((r) => r.state === 'partial'),
      `${name}: partial before`,
    );
    t.same(done(results.at(-1)!).header, header, name);
  }
});

t.test('the parser holds at most one header, whatever the chunk size', async (t) => {
  const parser = new ProxyHeaderParser();
  const head = v2(0x21, 0x11, Buffer.alloc(12), tlv(0x04, Buffer.alloc(PROXY_V2_MAX_LENGTH - 15)));
  t.equal(parser.push(head.subarray(0, 20)).state, 'partial');
  t.equal(parser.buffered, 20);
  const big = Buffer.concat([head.subarray(20), Buffer.alloc(1024 * 1024, 'x')]);
  const result = done(parser.push(big));
  t.equal(result.rest.length, 1024 * 1024, 'the rest of a big chunk is a view, not a copy');
  t.equal(result.rest.buffer, big.buffer);
  t.equal(parser.buffered, 0, 'nothing held once done');
  t.throws(() => parser.push(ascii('more')), /already parsed/, 'one header per parser');
});

t.test('random bytes never throw and are decided within one header', async () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([ascii('PROXY '), b])),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([SIG, b])),
      ),
      fc.nat(),
      (bytes, cut) => {
        const parser = new ProxyHeaderParser();
        const at = bytes.length === 0 ? 0 : cut % bytes.length;
        const first = parser.push(Buffer.from(bytes.subarray(0, at)));
        if (first.state !== 'partial') return true;
        parser.push(Buffer.from(bytes.subarray(at)));
        return parser.buffered <= 16 + PROXY_V2_MAX_LENGTH;
      },
    ),
    { numRuns: 2000 },
  );
});

/** The 16 bytes of an address the parser printed, to check it against what was sent. */
function ipv6Bytes(address: string): Buffer {
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  const hex = dotted
    ? address.slice(0, dotted.index) +
      [1, 3].map((i) => ((+dotted[i]! << 8) | +dotted[i + 1]!).toString(16)).join(':')
    : address;
  const [head = '', tail] = hex.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const missing = 8 - groups(head).length - groups(tail).length;
  const all = [
    ...groups(head),
    ...Array<string>(tail === undefined ? 0 : missing).fill('0'),
    ...groups(tail),
  ];
  return Buffer.from(all.map((g) => g.padStart(4, '0')).join(''), 'hex');
}

t.test('random v1 and v2 headers round-trip, IPv6 printed as Node prints it', async () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ minLength: 4, maxLength: 4 }),
      fc.integer({ min: 0, max: 65535 }),
      fc.integer({ min: 0, max: 65535 }),
      (six, four, sport, dport) => {
        const v6 = done(parseOne(v2(0x21, 0x21, six, six, u16(sport), u16(dport)))).header;
        if (v6.kind !== 'proxy') return false;
        const { address } = v6.source;
        if (!isIPv6(address) || address !== address.toLowerCase()) return false;
        if (!ipv6Bytes(address).equals(six) || v6.source.port !== sport) return false;
        // The v1 text form of the same endpoints gives the same header but for the version.
        const dotted = [...four].join('.');
        const line = `PROXY TCP6 ${address} ${address} ${sport} ${dport}\r\n`;
        const v1 = done(parseOne(ascii(line))).header;
        const v1four = done(
          parseOne(ascii(`PROXY TCP4 ${dotted} ${dotted} ${sport} ${dport}\r\n`)),
        );
        const v2four = done(parseOne(v2(0x21, 0x11, four, four, u16(sport), u16(dport))));
        return (
          JSON.stringify({ ...v1, version: 2 }) === JSON.stringify(v6) &&
          JSON.stringify({ ...v1four.header, version: 2 }) === JSON.stringify(v2four.header)
        );
      },
    ),
    { numRuns: 500 },
  );
});

// --- errors --------------------------------------------------------------------------------------

t.test('a first byte that starts neither signature is an error at once', async (t) => {
  for (const first of ['H', 'p', ' ', '\n', '\x16', '\x00']) {
    t.same(errorOf(parseOne(ascii(first))), {
      code: 'NO_HEADER',
      message: 'no PROXY protocol header',
    });
  }
  t.equal(parseOne(Buffer.alloc(0)).state, 'partial', 'no bytes yet: nothing to decide');
});

t.test('a plaintext peer is refused at the first byte that is not a header', async (t) => {
  for (const [input, at] of [
    ['PING\r\n', 1],
    ['PROXy TCP4', 4],
    ['\r\n\r\nPING', 4], // blank lines, then a command: the v2 signature has a NUL there
    ['\r\r', 1],
  ] as const) {
    const parser = new ProxyHeaderParser();
    const results = feed(
      parser,
      ...[...ascii(input).subarray(0, at + 1)].map((b) => Buffer.from([b])),
    );
    t.ok(
      results.slice(0, at).every((r) => r.state === 'partial'),
      `${JSON.stringify(input)}`,
    );
    t.equal(errorOf(results[at]).code, 'NO_HEADER', `${JSON.stringify(input)} at byte ${at}`);
  }
});

t.test(
  'v1: an unknown protocol is refused as soon as it cannot be TCP4, TCP6 or UNKNOWN',
  async (t) => {
    for (const [input, protocol] of [
      ['PROXY H', 'H'],
      ['PROXY TCP5', 'TCP5'],
      ['PROXY TCP ', 'TCP'],
      ['PROXY TCP4X', 'TCP4X'],
      ['PROXY UNKNOWNX', 'UNKNOWNX'],
      ['PROXY tcp4', 'tcp4'],
      ['PROXY  TCP4', ''],
    ] as const) {
      t.same(errorOf(parseOne(ascii(input))), {
        code: 'V1_INVALID',
        message: `invalid PROXY v1 header: protocol "${protocol}"`,
      });
    }
    t.equal(parseOne(ascii('PROXY TCP4 ')).state, 'partial', 'a known protocol waits for the rest');
    t.equal(parseOne(ascii('PROXY UNKNOW')).state, 'partial');
  },
);

t.test('v1: a line without CRLF in the first 107 bytes is too long', async (t) => {
  const longest = `PROXY UNKNOWN ${'f'.repeat(PROXY_V1_MAX_BYTES - 16)}\r\n`;
  t.equal(longest.length, 107);
  t.equal(done(parseOne(ascii(longest))).header.kind, 'unknown');
  const tooLong = `PROXY UNKNOWN ${'f'.repeat(PROXY_V1_MAX_BYTES - 15)}\r\n`;
  t.same(errorOf(parseOne(ascii(tooLong))), {
    code: 'V1_TOO_LONG',
    message: 'PROXY v1 header too long',
  });
  // Decided at the 107th byte, without waiting for more.
  const parser = new ProxyHeaderParser();
  t.equal(parser.push(ascii(tooLong.slice(0, 106))).state, 'partial');
  t.equal(parser.buffered, 106);
  t.equal(errorOf(parser.push(ascii('f'))).code, 'V1_TOO_LONG');
});

t.test('v1: line endings and bytes the text form does not allow', async (t) => {
  for (const [input, why] of [
    ['PROXY UNKNOWN\r\r\n', 'CR without LF'],
    ['PROXY UNKNOWN\rX', 'CR without LF'],
    ['PROXY UNKNOWN\n', 'LF without CR'],
    ['PROXY TCP4 1.2.3.4\t', 'byte 0x9'],
    ['PROXY UNKNOWN \xe9\r\n', 'byte 0xe9'],
    ['PROXY UNKNOWN \x7f', 'byte 0x7f'],
  ] as const) {
    t.same(errorOf(parseOne(ascii(input))), {
      code: 'V1_INVALID',
      message: `invalid PROXY v1 header: ${why}`,
    });
  }
  t.equal(parseOne(ascii('PROXY UNKNOWN\r')).state, 'partial', 'a CR waits for its LF');
});

t.test('v1: TCP4 and TCP6 need exactly two canonical addresses and two ports', async (t) => {
  const bad = [
    'TCP4 1.2.3.4 5.6.7.8 1',
    'TCP4 1.2.3.4 5.6.7.8 1 2 3',
    'TCP4 1.2.3.4  5.6.7.8 1 2',
    'TCP4 1.2.3.4 5.6.7.8 1 2 ',
    'TCP4',
    'TCP4 256.2.3.4 5.6.7.8 1 2',
    'TCP4 01.2.3.4 5.6.7.8 1 2',
    'TCP4 1.2.3 5.6.7.8 1 2',
    'TCP4 ::1 5.6.7.8 1 2',
    'TCP6 1.2.3.4 ::1 1 2',
    'TCP6 fe80::1%eth0 ::1 1 2',
    'TCP6 1::2::3 ::1 1 2',
    'TCP6 ::1 ::1 65536 2',
    'TCP6 ::1 ::1 01 2',
    'TCP6 ::1 ::1 1 -2',
    'TCP6 ::1 ::1 1 0x2',
    'TCP6 ::1 ::1 1 +2',
    'TCP6 ::1 ::1 100000 2',
  ];
  for (const rest of bad) {
    const { code, message } = errorOf(parseOne(ascii(`PROXY ${rest}\r\n`)));
    t.equal(code, 'V1_INVALID', rest);
    t.match(message, /^invalid PROXY v1 header: /);
  }
  t.same(errorOf(parseOne(ascii('PROXY \r\n'))), {
    code: 'V1_INVALID',
    message: 'invalid PROXY v1 header: protocol ""',
  });
  t.same(
    errorOf(parseOne(ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'))).message,
    'invalid PROXY v1 header: TCP4 needs 2 addresses and 2 ports',
  );
  t.same(
    errorOf(parseOne(ascii('PROXY TCP6 ::1 ::1 1 99999\r\n'))).message,
    'invalid PROXY v1 header: not IPv6 addresses and ports: "TCP6 ::1 ::1 1 99999"',
  );
});

t.test('v2: version, command and family are checked as soon as they arrive', async (t) => {
  const at13 = (byte: number) => Buffer.concat([SIG, Buffer.from([byte])]);
  t.same(errorOf(parseOne(at13(0x11))), {
    code: 'V2_INVALID',
    message: 'invalid PROXY v2 header: version 1',
  });
  t.equal(errorOf(parseOne(at13(0x31))).message, 'invalid PROXY v2 header: version 3');
  t.equal(errorOf(parseOne(at13(0x22))).message, 'invalid PROXY v2 header: command 2');
  t.equal(errorOf(parseOne(at13(0x2f))).message, 'invalid PROXY v2 header: command 15');
  t.equal(parseOne(at13(0x21)).state, 'partial');
  const at14 = (fam: number) => Buffer.concat([SIG, Buffer.from([0x21, fam])]);
  for (const fam of [0x41, 0x13, 0xf1, 0x03]) {
    t.equal(
      errorOf(parseOne(at14(fam))).message,
      `invalid PROXY v2 header: family and transport 0x${fam.toString(16).padStart(2, '0')}`,
    );
  }
  t.equal(parseOne(at14(0x11)).state, 'partial');
  t.equal(parseOne(Buffer.concat([SIG, Buffer.from([0x20, 0xff])])).state, 'partial', 'LOCAL');
});

t.test('v2: the length is checked before the block arrives', async (t) => {
  const fixed = (verCmd: number, fam: number, length: number) =>
    Buffer.concat([SIG, Buffer.from([verCmd, fam]), u16(length)]);
  t.same(errorOf(parseOne(fixed(0x21, 0x11, PROXY_V2_MAX_LENGTH + 1))), {
    code: 'V2_TOO_LONG',
    message: `PROXY v2 header too long: 2049 bytes of addresses and TLVs, at most 2048`,
  });
  t.equal(errorOf(parseOne(fixed(0x20, 0x00, 0xffff))).code, 'V2_TOO_LONG', 'LOCAL as well');
  t.equal(parseOne(fixed(0x21, 0x11, PROXY_V2_MAX_LENGTH)).state, 'partial');
  t.same(errorOf(parseOne(fixed(0x21, 0x11, 11))), {
    code: 'V2_INVALID',
    message: 'invalid PROXY v2 header: 11 bytes cannot hold two IPv4 endpoints',
  });
  t.equal(
    errorOf(parseOne(fixed(0x21, 0x21, 12))).message,
    'invalid PROXY v2 header: 12 bytes cannot hold two IPv6 endpoints',
  );
});

t.test('v2: TLVs must fill the rest of the block exactly', async (t) => {
  const endpoints = Buffer.alloc(12);
  for (const [name, extra] of [
    ['one byte left over', Buffer.from([0x04])],
    ['two bytes left over', Buffer.from([0x04, 0x00])],
    ['a TLV longer than the block', Buffer.from([0x04, 0x00, 0x02, 0xaa])],
    [
      'a good TLV, then a bad one',
      Buffer.concat([tlv(0x04, Buffer.alloc(2)), Buffer.from([1, 0, 9])]),
    ],
  ] as const) {
    t.same(
      errorOf(parseOne(v2(0x21, 0x11, endpoints, extra))),
      { code: 'V2_INVALID', message: 'invalid PROXY v2 header: a TLV runs past the header' },
      name,
    );
  }
});
