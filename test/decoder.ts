import t from 'tap';
import { parseRequest } from '../src/protocol/requests.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { LineDecoder, lineText } from '../src/protocol/decoder.js';

const feed = (decoder: LineDecoder, ...chunks: string[]) =>
  chunks.flatMap((c) => decoder.push(Buffer.from(c, 'latin1')));

t.test('several lines in one chunk, LF and CRLF', async (t) => {
  const d = new LineDecoder(1024);
  t.same(feed(d, 'PING\r\nEVEN\nODD\r\n'), ['PING', 'EVEN', 'ODD']);
  t.equal(d.buffered, 0);
});

t.test('only one CR before LF is dropped; other CRs are data', async (t) => {
  const d = new LineDecoder(1024);
  t.same(feed(d, 'A\r\r\nB\rC\n\r\n'), ['A\r', 'B\rC', '']);
});

t.test('CRLF cut between CR and LF', async (t) => {
  const d = new LineDecoder(1024);
  t.same(feed(d, 'PING\r'), []);
  t.same(feed(d, '\nPONG'), ['PING']);
  t.same(d.end(), ['PONG']);
});

t.test('the same input gives the same lines at every split point', async (t) => {
  const input = 'HELLO alice\r\nVALUE 5\n\n  \nEVEN\r\nODD\rX\nQUIT';
  const expected = ['HELLO alice', 'VALUE 5', '', '  ', 'EVEN', 'ODD\rX'];
  for (let i = 0; i <= input.length; i++) {
    for (let j = i; j <= input.length; j++) {
      const d = new LineDecoder(1024);
      const lines = feed(d, input.slice(0, i), input.slice(i, j), input.slice(j));
      t.same([...lines, ...d.end()], [...expected, 'QUIT'], `split at ${i},${j}`);
    }
  }
});

t.test('a line of exactly the maximum is allowed, one byte more is not', async (t) => {
  const max = 16;
  for (const ending of ['\n', '\r\n']) {
    const ok = new LineDecoder(max);
    t.same(feed(ok, 'x'.repeat(max) + ending), ['x'.repeat(max)]);
    t.notOk(ok.overflowed);
    const bad = new LineDecoder(max);
    t.same(feed(bad, 'PING\n' + 'x'.repeat(max + 1) + ending + 'PING\n'), ['PING']);
    t.ok(bad.overflowed, `max+1 with ${JSON.stringify(ending)}`);
  }
});

t.test('a maximum-length line delivered byte by byte, with CRLF', async (t) => {
  const d = new LineDecoder(8);
  const lines = feed(d, ...'12345678\r\n'.split(''));
  t.same(lines, ['12345678']);
  t.notOk(d.overflowed);
});

t.test('overflow is detected without an LF and the buffer never exceeds max + 1', async (t) => {
  const d = new LineDecoder(8);
  for (let i = 0; i < 9; i++) {
    feed(d, 'x');
    t.ok(d.buffered <= 9);
  }
  t.ok(d.overflowed, 'nine bytes and no CR is already too long');
  t.equal(d.buffered, 0, 'nothing is kept after overflow');
  t.same(feed(d, 'PING\n'), [], 'nothing more is decoded');
  t.same(d.end(), []);
});

t.test('a trailing CR at max + 1 waits for its LF', async (t) => {
  const d = new LineDecoder(8);
  feed(d, '12345678\r');
  t.notOk(d.overflowed);
  t.same(feed(d, 'x'), []);
  t.ok(d.overflowed, 'the CR was not followed by LF');
});

t.test('a huge chunk with no LF is refused without being copied', async (t) => {
  const d = new LineDecoder(1024);
  d.push(Buffer.alloc(1 << 20, 0x41));
  t.ok(d.overflowed);
  t.equal(d.buffered, 0);
});

t.test(
  'lines are byte strings: UTF-8 split across chunks and invalid bytes kept exactly',
  async (t) => {
    const d = new LineDecoder(64);
    const euro = Buffer.from('€\n');
    const [line] = [...d.push(euro.subarray(0, 1)), ...d.push(euro.subarray(1))];
    t.equal(line, '\u00e2\u0082\u00ac', 'one char per byte');
    t.same(lineText(line!), { text: '€', raw: null }, 'valid UTF-8 reads back as text, no raw');
    const [bad] = d.push(Buffer.from([0xff, 0x41, 0x0a]));
    t.equal(bad, '\u00ffA');
    t.same(lineText(bad!), { text: '\ufffdA', raw: Buffer.from([0xff, 0x41]).toString('base64') });
    t.same(lineText('PING'), { text: 'PING', raw: null }, 'ASCII is itself');
  },
);

t.test('property: lineText gives back the exact bytes of any line', async () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const buf = Buffer.from(bytes);
      const { text, raw } = lineText(buf.toString('latin1'));
      const back = raw === null ? Buffer.from(text, 'utf8') : Buffer.from(raw, 'base64');
      return back.equals(buf);
    }),
  );
});

t.test(
  'a CR at the end of a half-closed last line is dropped, as if its LF had come',
  async (t) => {
    // protocol.md: the unterminated last line counts as if an LF followed it.
    const d = new LineDecoder(64);
    t.same(d.push(Buffer.from('PING\r')), []);
    t.same(d.end(), ['PING']);
  },
);

t.test('property: chunking never changes the decoded lines', async (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.array(fc.nat(300), { maxLength: 8 }),
      fc.integer({ min: 1, max: 40 }),
      (bytes, cuts, max) => {
        const whole = new LineDecoder(max);
        const expected = [...whole.push(Buffer.from(bytes)), ...whole.end()];
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const split = new LineDecoder(max);
        const got: string[] = [];
        let from = 0;
        for (const p of [...points, bytes.length]) {
          got.push(...split.push(Buffer.from(bytes.slice(from, p))));
          from = p;
        }
        got.push(...split.end());
        t.same(got, expected);
        t.equal(split.overflowed, whole.overflowed);
        return true;
      },
    ),
    { numRuns: 500 },
  );
});

t.test(
  'property: every line is within the limit and holds no LF; buffering is bounded',
  async (t) => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }),
        fc.integer({ min: 1, max: 32 }),
        (chunks, max) => {
          const d = new LineDecoder(max);
          for (const c of chunks) {
            for (const line of d.push(Buffer.from(c))) {
              if (Buffer.byteLength(line) > max * 3 || line.includes('\n')) return false;
            }
            if (d.buffered > max + 1) return false;
          }
          return true;
        },
      ),
      { numRuns: 1000 },
    );
    t.pass('1000 random runs');
  },
);

t.test('lines can be taken one at a time; the rest of a chunk waits undecoded', async (t) => {
  const d = new LineDecoder(16);
  d.write(Buffer.from('A\nB\r\nC'));
  t.equal(d.next(), 'A');
  d.write(Buffer.from('\nD\n')); // arrives while B is still unread
  t.same([d.next(), d.next(), d.next(), d.next()], ['B', 'C', 'D', null]);
  d.write(Buffer.from('tail'));
  t.equal(d.next(), null);
  t.same(d.end(), ['tail']);
});

t.test('end() also returns lines of a chunk not yet taken', async (t) => {
  const d = new LineDecoder(16);
  d.write(Buffer.from('A\nB\nC'));
  t.equal(d.next(), 'A');
  t.same(d.end(), ['B', 'C']);
});

t.test('an id parsed from a large read does not keep the read alive', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const read = (n: number) =>
    Buffer.from(`HELLO ${'i'.repeat(40)}${n}\n${'PING\n'.repeat(6_000)}`, 'latin1'); // ~30 KB
  gc();
  const before = process.memoryUsage().heapUsed;
  const ids: string[] = [];
  for (let n = 0; n < 2_000; n++) {
    const [hello] = new LineDecoder(64).push(read(n));
    const parsed = parseRequest(hello!);
    if (parsed.type === 'request' && parsed.request.verb === 'HELLO') ids.push(parsed.request.id);
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  t.equal(ids.length, 2_000);
  // Kept whole, the 2,000 reads would be ~60 MB of strings; the ids alone are ~100 KB.
  t.ok(grown < 10_000_000, `heap grew ${Math.round(grown / 1e6)} MB for 2,000 ids`);
});
