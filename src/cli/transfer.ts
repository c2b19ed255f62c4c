import type { Writable } from 'node:stream';
import { hidePassword } from './cluster-options.js';

const USAGE =
  'usage: parity-server export STATE_FILE   (every value in Redis -> a state file)\n' +
  '       parity-server import STATE_FILE   (a state file and its journal -> Redis)\n' +
  'The Redis URL comes from PARITY_STORE (redis://host:port/db or rediss://…), so a password\n' +
  'never sits on the command line. Import sets values only: claims of ids already in Redis stay.\n' +
  'Stop the servers on the state file first: import reads it as a restart would.\n';

/** `parity-server export|import STATE_FILE`. Returns the exit code. */
export async function transfer(
  verb: 'export' | 'import',
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  stderr: Writable = process.stderr,
): Promise<number> {
  const [file, ...rest] = argv;
  if (file === undefined || rest.length > 0 || file.startsWith('-')) {
    stderr.write(USAGE);
    return argv.includes('--help') ? 0 : 2;
  }
  const url = env.PARITY_STORE;
  if (url === undefined || !/^rediss?:\/\//.test(url)) {
    stderr.write(`parity-server ${verb}: set PARITY_STORE=redis://host:port/db\n`);
    return 2;
  }
  const shown = hidePassword(url);
  try {
    const { exportRedisToFile, importFileToRedis } = await import('../store/redis/transfer.js');
    if (verb === 'export') {
      const { ids, skipped } = await exportRedisToFile(url, file);
      stderr.write(
        `parity-server export: ${ids} ids from ${shown} written to ${file}` +
          (skipped > 0 ? ` (${skipped} keys without a value skipped)` : '') +
          '\n',
      );
    } else {
      const { ids, written, kept } = await importFileToRedis(file, url);
      stderr.write(
        `parity-server import: ${ids} ids read from ${file}; ${written} written to ${shown}` +
          (kept > 0 ? `, ${kept} kept (Redis already had a value)` : '') +
          '\n',
      );
    }
    return 0;
  } catch (err) {
    const message = ((err as Error).message ?? String(err)).split(url).join(shown);
    stderr.write(`parity-server ${verb}: ${message}\n`);
    return 1;
  }
}
