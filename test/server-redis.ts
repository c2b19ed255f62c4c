/**
 * The server's protocol tests (test/server.ts) again, with every test server keeping its values
 * in a real Redis: the protocol code must not know which store it runs on. Tests of the file store
 * itself skip here, with the reason.
 */
import t from 'tap';
import { redisMissing, startRedis } from './fixtures/redis.js';

const missing = redisMissing();
if (missing) t.skip(missing);
else {
  const redis = await startRedis(t, { args: ['--databases', '1000'] });
  process.env.PARITY_TEST_REDIS = redis.url;
  await import('./server.js');
}
