import t from 'tap';
import { checkCluster, hidePassword, type ClusterArgs } from '../src/cli/cluster-options.js';

const base: ClusterArgs = {
  'redis-wait': 0,
  'allow-volatile-store': false,
  'store-timeout-ms': 2_000,
  workers: 1,
  'proxy-protocol': false,
};
const problem = (args: Partial<ClusterArgs>, argv: string[] = []) => {
  try {
    checkCluster({ ...base, ...args }, argv);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
};

t.test('the file store: no Redis-only flags', async (t) => {
  t.equal(problem({}), null);
  t.match(problem({ workers: 2 }), /--workers needs --store/);
  t.match(problem({ 'redis-wait': 1 }), /--redis-wait needs --store/);
  t.match(problem({ 'allow-volatile-store': true }), /--allow-volatile-store needs --store/);
});

t.test('a Redis store', async (t) => {
  t.equal(problem({ store: 'redis://127.0.0.1:6379/0', workers: 4, 'redis-wait': 1 }), null);
  t.equal(problem({ store: 'rediss://cache.example:6380/2' }), null);
  t.match(problem({ store: 'http://x' }), /use redis:\/\/host:port\/db/);
  t.match(problem({ store: 'redis://h/0', state: 's.json' }), /--state is not used/);
});

t.test('a password only from the environment, and never shown', async (t) => {
  const url = 'redis://:pw@127.0.0.1:6379/0';
  t.equal(problem({ store: url }, []), null, 'from PARITY_STORE');
  t.match(problem({ store: url }, ['--store', url]), /PARITY_STORE, not on the command line/);
  t.match(problem({ store: url }, [`--store=${url}`]), /PARITY_STORE/);
  t.equal(hidePassword(url), 'redis://:***@127.0.0.1:6379/0');
  t.equal(hidePassword('rediss://user:pw@h:1/0'), 'rediss://user:***@h:1/0');
  t.equal(hidePassword('redis://h:1/0'), 'redis://h:1/0');
  t.notMatch(problem({ store: 'x://:pw@h' }) ?? '', /pw/, 'a bad URL is shown without it');
});

t.test('PROXY protocol and TLS do not go together', async (t) => {
  t.match(
    problem({ 'proxy-protocol': true, 'tls-cert': 'c.pem' }),
    /terminate TLS at the balancer/,
  );
  t.equal(problem({ 'proxy-protocol': true }), null);
});
