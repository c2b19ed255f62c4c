import t from 'tap';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Handshakes } from '../src/server/handshakes.js';

/** Just what Handshakes reads of a socket: its two ends, and its `close`. */
function socket(remote: string | undefined, remotePort: number, local = '127.0.0.1', port = 7070) {
  return Object.assign(new EventEmitter(), {
    remoteAddress: remote,
    remotePort,
    localAddress: local,
    localPort: port,
  }) as unknown as Socket;
}

t.test('counted from add until done or close, once, by address', async (t) => {
  const h = new Handshakes();
  const a = socket('10.0.0.1', 5000);
  const b = socket('10.0.0.1', 5001);
  h.add(a);
  h.add(b);
  t.equal(h.size, 2);
  t.equal(h.from('10.0.0.1'), 2);
  h.done(socket('10.0.0.1', 5000)); // the TLS socket over `a`: same ends
  t.equal(h.from('10.0.0.1'), 1);
  a.emit('close'); // after its handshake: already uncounted
  t.equal(h.from('10.0.0.1'), 1);
  b.emit('close');
  t.equal(h.size, 0);
  t.equal(h.from('10.0.0.1'), 0);
});

t.test('one client port to two server addresses: two handshakes, no leak', async (t) => {
  const h = new Handshakes();
  const one = socket('10.0.0.1', 5000, '127.0.0.1');
  const two = socket('10.0.0.1', 5000, '127.0.0.2');
  h.add(one);
  h.add(two);
  t.equal(h.from('10.0.0.1'), 2);
  one.emit('close');
  two.emit('close');
  t.equal(h.from('10.0.0.1'), 0, 'both released');
});

t.test(
  'a socket whose close is late is replaced, not leaked; its late close changes nothing',
  async (t) => {
    const h = new Handshakes();
    const old = socket('10.0.0.1', 5000);
    const reused = socket('10.0.0.1', 5000);
    h.add(old);
    h.add(reused);
    t.equal(h.from('10.0.0.1'), 1);
    old.emit('close');
    t.equal(h.from('10.0.0.1'), 1, 'the newer one is still counted');
    reused.emit('close');
    t.equal(h.from('10.0.0.1'), 0);
  },
);

t.test('a socket reset before it was accepted (no address) is not counted', async (t) => {
  const h = new Handshakes();
  const gone = socket(undefined, 0);
  h.add(gone);
  t.equal(h.size, 0);
  gone.emit('close');
  t.equal(h.size, 0);
});
