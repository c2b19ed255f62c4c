import { REDIS_STORE_DEFAULTS } from '../limits.js';
import { bool, int, ms, optionalStr } from './options.js';

/** Where values live and how servers share them (issue 13), spread into the server's options. */
export const CLUSTER_OPTIONS = {
  store: optionalStr(
    'where values live: redis://host:6379/0 or rediss://… for TLS (default: the state file); ' +
      'a password only through PARITY_STORE, never on the command line',
  ),
  'redis-wait': int(
    'with a Redis store: replicas that must confirm each write before OK (WAIT)',
    0,
    0,
  ),
  'allow-volatile-store': bool('start on a Redis without appendonly (an OK could be lost)'),
  'store-timeout-ms': ms(
    'a store call not answered this long is ERR STORAGE',
    REDIS_STORE_DEFAULTS.timeoutMs,
  ),
  'node-name': optionalStr(
    'this server in every message-log record (default with a Redis store: host:port)',
  ),
  workers: int('with a Redis store: server processes sharing the port', 1, 1, 64),
  'proxy-protocol': bool(
    'every connection starts with a PROXY v1/v2 header (HAProxy send-proxy); without one it is closed',
  ),
} as const;

export type ClusterArgs = {
  store?: string | undefined;
  state?: string | undefined;
  'redis-wait': number;
  'allow-volatile-store': boolean;
  'store-timeout-ms': number;
  'node-name'?: string | undefined;
  workers: number;
  'proxy-protocol': boolean;
  'tls-cert'?: string | undefined;
};

/** `redis://user:secret@host` with its password hidden, for messages. */
export function hidePassword(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}

/** What the option table cannot check alone. `argv` is searched for a password given there. */
export function checkCluster(args: ClusterArgs, argv: readonly string[]): true {
  // The header comes before any TLS byte; a balancer that adds it terminates TLS itself.
  if (args['proxy-protocol'] && args['tls-cert'] !== undefined)
    throw new Error('--proxy-protocol with --tls-cert: terminate TLS at the balancer instead');
  const store = args.store;
  if (store === undefined) {
    if (args.workers > 1)
      throw new Error('--workers needs --store redis://… (one file, one process)');
    for (const flag of ['redis-wait', 'allow-volatile-store'] as const) {
      if (args[flag] !== CLUSTER_OPTIONS[flag].default)
        throw new Error(`--${flag} needs --store redis://…`);
    }
    return true;
  }
  if (!/^rediss?:\/\/[^/\s]+/.test(store))
    throw new Error(`--store ${hidePassword(store)}: use redis://host:port/db or rediss://…`);
  if (args.state !== undefined)
    throw new Error('--state is not used with a Redis store: values live in Redis');
  // A password on the command line is readable by every local user (ps, /proc/*/cmdline).
  if (hidePassword(store) !== store && argv.some((a) => a.includes(store)))
    throw new Error('--store: put a Redis password in PARITY_STORE, not on the command line');
  return true;
}
