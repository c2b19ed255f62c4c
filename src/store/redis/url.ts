/** Where the Redis store connects, read from `--store redis://[user:password@]host[:port][/db]`. */
export type RedisTarget = {
  host: string;
  port: number;
  db: number;
  username: string | undefined;
  password: string | undefined;
  /** `rediss://`: TLS, verified against the system's CAs (and NODE_EXTRA_CA_CERTS). */
  tls: boolean;
  /** The URL without its password, for messages and the console: `redis://127.0.0.1:6379/0`. */
  description: string;
};

/** The URL cannot be used; the message never contains the password. */
export class RedisUrlError extends Error {
  override name = 'RedisUrlError';
}

export const DEFAULT_REDIS_PORT = 6379;

/** Redis's own bound on `databases` is a 32-bit int; anything larger is a typo. */
const DB_RE = /^(?:\/(0|[1-9][0-9]{0,8})?)?$/;

export function parseRedisUrl(text: string): RedisTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not echoed: a malformed URL may still hold a password.
    throw new RedisUrlError('the store is not a valid URL; expected redis://host:port/db');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new RedisUrlError(
      `the store URL must start with redis:// or rediss://, not ${url.protocol}//`,
    );
  }
  if (url.hostname === '') throw new RedisUrlError('the store URL names no host');
  const db = DB_RE.exec(url.pathname);
  if (db === null)
    throw new RedisUrlError('the store URL path must be a database number, as in /0');
  if (url.search !== '' || url.hash !== '') {
    // Silently ignoring `?password=…` or `?tls=…` would connect somewhere other than meant.
    throw new RedisUrlError('the store URL takes no ?query or #fragment');
  }
  const port = url.port === '' ? DEFAULT_REDIS_PORT : Number(url.port);
  const username = url.username === '' ? undefined : decodeURIComponent(url.username);
  const password = url.password === '' ? undefined : decodeURIComponent(url.password);
  const number = Number(db[1] ?? 0);
  const user = url.username === '' ? '' : `${url.username}@`;
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'), // [::1] in a URL, ::1 to connect
    port,
    db: number,
    username,
    password,
    tls: url.protocol === 'rediss:',
    description: `${url.protocol}//${user}${url.hostname}:${port}/${number}`,
  };
}
