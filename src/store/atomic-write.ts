import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fsyncDir } from '../fs/sync-folder.js';
import { openExclusive, unguessable } from '../fs/exclusive-open.js';

/** The fs calls the writer makes; tests pass a wrapper that fails on demand (a failing disk). */
export type WriteFs = Pick<typeof fsp, 'open' | 'rename' | 'unlink' | 'readdir'>;

function tempPrefix(path: string): string {
  return `${basename(path)}.tmp-`;
}

/**
 * `<name>.tmp-<random>`: the prefix lets removeStaleTemps find leftovers; the random part keeps
 * another user from planting a symlink at the name (the old `<pid>-<counter>` was guessable).
 */
function tempPath(path: string): string {
  return join(dirname(path), `${tempPrefix(path)}${unguessable()}`);
}

/**
 * Replaces `path` with `data` so that a reader, or a crash at any instant, sees either the old
 * file or the new one, never a mix: write a temp file in the same folder, fsync it, rename it over
 * `path` (atomic within a filesystem), then fsync the folder so the rename itself is on disk.
 * Only after the folder fsync is the write durable; callers acknowledge nothing before that.
 * The temp name is random and created exclusively, never following a symlink, mode 0600; the mode
 * carries through the rename, so the state file is private whatever mode it had before. The temp
 * file is removed if anything fails before the rename.
 * `path` must be the real path (see realFilePath): a symlink at `path` would be replaced.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Buffer,
  fs: WriteFs = fsp,
): Promise<void> {
  const temp = tempPath(path);
  // Opened first, outside the try: if the name was taken, it is not ours to remove.
  const file = await openExclusive(temp, fs);
  let renamed = false;
  try {
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await fs.rename(temp, path);
    renamed = true;
    await fsyncDir(dirname(path), fs);
  } finally {
    if (!renamed) await fs.unlink(temp).catch(() => {});
  }
}

/** Proves the folder takes writes (a temp file written, fsynced, removed) without touching `path`. */
export async function probeWritable(path: string, fs: WriteFs = fsp): Promise<void> {
  const temp = tempPath(path);
  const file = await openExclusive(temp, fs);
  try {
    try {
      await file.writeFile('{}\n');
      await file.sync();
    } finally {
      await file.close();
    }
  } finally {
    await fs.unlink(temp).catch(() => {});
  }
}

/**
 * Removes temp files a crashed writer left beside `path`. They are never read: the rename is the
 * commit point, so a temp file is by definition an unfinished write.
 */
export async function removeStaleTemps(path: string, fs: WriteFs = fsp): Promise<string[]> {
  const prefix = tempPrefix(path);
  const names = (await fs.readdir(dirname(path))).filter((n) => n.startsWith(prefix));
  await Promise.all(names.map((n) => fs.unlink(join(dirname(path), n)).catch(() => {})));
  return names;
}
