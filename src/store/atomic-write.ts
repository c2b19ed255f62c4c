import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The fs calls the writer makes; tests pass a wrapper that fails on demand (a failing disk). */
export type WriteFs = Pick<typeof fsp, 'open' | 'rename' | 'unlink' | 'readdir'>;

let sequence = 0;

function tempPrefix(path: string): string {
  return `${basename(path)}.tmp-`;
}

/**
 * Replaces `path` with `data` so that a reader, or a crash at any instant, sees either the old
 * file or the new one, never a mix: write a temp file in the same folder, fsync it, rename it over
 * `path` (atomic within a filesystem), then fsync the folder so the rename itself is on disk.
 * Only after the folder fsync is the write durable; callers acknowledge nothing before that.
 * The temp name is unique per process and call; it is removed if anything fails before the rename.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Buffer,
  fs: WriteFs = fsp,
): Promise<void> {
  const temp = join(dirname(path), `${tempPrefix(path)}${process.pid}-${++sequence}`);
  let renamed = false;
  try {
    const file = await fs.open(temp, 'w', 0o644);
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
  const temp = join(dirname(path), `${tempPrefix(path)}${process.pid}-probe`);
  try {
    const file = await fs.open(temp, 'w', 0o644);
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

async function fsyncDir(dir: string, fs: WriteFs): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
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
