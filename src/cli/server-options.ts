import { join, resolve } from 'node:path';
import { SERVER_DEFAULTS as D, STORE_DEFAULTS } from '../limits.js';
import { bool, int, ms, optionalStr, parseOptions, str, type Values } from './options.js';
import { HTTP_CLI_OPTIONS } from './http-options.js';
import { SECURITY_OPTIONS } from './security-options.js';
import { CLUSTER_OPTIONS } from './cluster-options.js';

/** Every server flag, its default from SERVER_DEFAULTS, and its range. */
export const SERVER_OPTIONS = {
  host: str('address to listen on', D.host),
  port: int('TCP port (0 picks a free one)', D.port, 0, 65535),
  'data-dir': str(`folder for ${D.state} and ${D.log}`, '.'),
  state: optionalStr('JSON state file (default: in --data-dir)'),
  log: optionalStr('JSON-lines message log (default: in --data-dir)'),
  repair: bool('set an invalid state file aside and start empty'),
  'max-line-bytes': int('longest request line, without LF/CRLF', D.maxLineBytes),
  'idle-timeout-ms': ms('close connections that send no request this long', D.idleTimeoutMs),
  'max-clients': int('refuse connections beyond this many', D.maxClients),
  'max-clients-per-address': int(
    'refuse connections from one address beyond this many',
    D.maxClientsPerAddress,
  ),
  'max-ids': int('most ids kept; HELLO of a new one past it is ERR ID_LIMIT', D.maxIds),
  'output-cap-bytes': int('stop reading a peer with this much unsent output', D.outputCapBytes),
  'drain-timeout-ms': ms('drop a peer over the output cap this long', D.drainTimeoutMs),
  'log-flush-ms': ms('write the message log at least this often', D.logFlushMs),
  'log-buffer-bytes': int('most message-log bytes held in memory', D.logBufferBytes),
  'log-max-bytes': int('rotate the message log at this size (0: never)', D.logMaxBytes, 0),
  'log-keep': int('rotated message logs kept', D.logKeep),
  'commit-delay-ms': ms(
    'under many clients that send at their own pace, hold a commit this long for more (0: off)',
    STORE_DEFAULTS.commitDelayMs,
    0,
  ),
  'shutdown-timeout-ms': ms('on SIGTERM, wait this long for peers', D.shutdownTimeoutMs),
  ...SECURITY_OPTIONS,
  ...HTTP_CLI_OPTIONS,
  ...CLUSTER_OPTIONS,
} as const;

export type ServerArgs = Values<typeof SERVER_OPTIONS> & { statePath: string; logPath: string };

export const parseServerArgs = (argv: string[], env: NodeJS.ProcessEnv) =>
  parseOptions(argv, env, SERVER_OPTIONS, {
    name: 'parity-server',
    usage:
      '$0 [options]\n\nThe Parity counter server. Every option can also be set as ' +
      'PARITY_<NAME> (PARITY_MAX_CLIENTS=500); booleans take 1, 0, true or false.',
    epilogue:
      'Commands, each with its own --help:\n' +
      '  $0 passwd FILE ID   set a password in a users file (--users)\n' +
      '  $0 export FILE      Redis (PARITY_STORE) -> a new state file\n' +
      '  $0 import FILE      a state file -> Redis (PARITY_STORE)',
  });

/** Absolute state and log paths: --state/--log if given, else their place under --data-dir. */
export function dataPaths(values: Values<typeof SERVER_OPTIONS>) {
  return {
    statePath: resolve(values.state ?? join(values['data-dir'], D.state)),
    logPath: resolve(values.log ?? join(values['data-dir'], D.log)),
  };
}
