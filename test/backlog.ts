import t from 'tap';
import { Backlog } from '../src/log/backlog.js';

/** Everything sealed so far, as text. */
const sealed = (b: Backlog) => {
  b.seal(true);
  return Buffer.concat(b.queue.map((s) => s.bytes)).toString('utf8');
};

t.test('lines reach the queue in order, encoded once the buffer is sealed', async (t) => {
  const b = new Backlog(1 << 20);
  t.ok(b.add('{"a":1}\n'));
  t.ok(b.add('{"b":"é"}\n'));
  t.equal(b.accepted, 18, 'not encoded yet: counted a byte per character');
  t.equal(b.unwritten, 18, 'counted a byte per character until encoded');
  t.equal(sealed(b), '{"a":1}\n{"b":"é"}\n');
  t.equal(b.accepted, 19, 'é is two bytes once encoded');
  t.equal(b.unwritten, 19);
});

t.test('a long run of lines is encoded as it grows, not held whole as a string', async (t) => {
  const b = new Backlog(1 << 24);
  const line = `${'é'.repeat(99)}\n`; // 100 characters, 199 bytes
  for (let i = 0; i < 1000; i++) b.add(line); // 100,000 characters
  // A character still in the rope counts one byte, an encoded é two: only encoding as it grows
  // (at least 100,000 - 16k characters of it) takes the count past 150,000.
  t.ok(b.accepted > 150_000, `encoded in batches: ${b.accepted}`);
  t.equal(sealed(b), line.repeat(1000));
});

t.test('the cap holds in bytes for multi-byte lines held as a string', async (t) => {
  const b = new Backlog(40);
  const wide = `${'€'.repeat(6)}\n`; // 7 characters, 19 bytes
  t.ok(b.add(wide));
  t.ok(b.add(wide), '38 bytes: fits under 40, though 14 characters × 3 would not');
  t.notOk(b.add('ab\n'), 'a third line would pass the cap');
  t.equal(b.dropped, 1);
  t.equal(b.unwritten, 38);
  t.equal(sealed(b), `{"event":"dropped","lines":1}\n${wide}${wide}`, 'the note goes first');
});
