import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { dirname } from 'node:path';
import { makePrivateFolder } from '../fs/private-folder.js';
import { realFilePath } from '../fs/real-path.js';

export interface StateLock {
  release(): Promise<void>;
}

/**
 * One server per state file. Two servers on one file would each rewrite it from their own table,
 * so values one of them acknowledged would vanish when the other next commits.
 *
 * The lock is a Linux abstract Unix socket named after the file's real path: binding the name is
 * exclusive on the machine, creates no file, and the kernel frees it when the process ends, however
 * it ends, so a crash (kill -9) never leaves a stale lock behind to clear by hand. The holder
 * answers each connection with its pid, so the refusal can name it. Elsewhere (no abstract
 * sockets) there is no lock.
 *
 * Limits: abstract names have no permissions, so another local user who binds the name first keeps
 * the server from starting (the refusal names their pid; the data is never touched). The name is
 * per network namespace, so containers sharing a volume but not a network do not see each other.
 */
export async function lockStateFile(statePath: string): Promise<StateLock> {
  if (process.platform !== 'linux') return { release: async () => {} };
  // The file's own real path (symlinks to the file or to a folder above it resolved, or where a
  // dangling symlink points), so every path that names this file finds the same lock.
  await makePrivateFolder(dirname(statePath));
  const real = await realFilePath(statePath);
  const name = `\0parity-state-${createHash('sha256').update(real).digest('hex')}`;
  const holder = createServer((peer) => peer.end(`${process.pid}\n`));
  try {
    holder.listen(name);
    await once(holder, 'listening');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    const pid = await holderPid(name);
    throw new Error(
      `${statePath} is in use by another Parity server${pid === null ? '' : ` (pid ${pid})`}; ` +
        'stop it first, or give this one another --state',
      { cause: err },
    );
  }
  holder.unref(); // the lock alone must not keep the process running
  return {
    release: () => new Promise<void>((resolve) => holder.close(() => resolve())),
  };
}

/** The pid the lock's holder reports, or null if it does not answer within a second. */
async function holderPid(name: string): Promise<string | null> {
  const socket = connect(name);
  socket.setTimeout(1_000, () => socket.destroy());
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => {});
  await once(socket, 'close');
  return /^\d+\n$/.test(text) ? text.trim() : null;
}
