import { promises as fsp } from 'node:fs';

/**
 * fsyncs a folder: a name created, renamed or removed in it is an entry in the folder's own data,
 * durable only once the folder is synced (on ext4 without a journal, as on this project's disks,
 * nothing else makes it so), just as a file's bytes are durable only after its own fsync.
 */
export async function fsyncDir(dir: string, fs: Pick<typeof fsp, 'open'> = fsp): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
