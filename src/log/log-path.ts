import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PRIVATE_FILE_MODE } from '../fs/exclusive-open.js';
import { PRIVATE_FOLDER_MODE } from '../fs/private-folder.js';
import { fsyncDir } from '../fs/sync-folder.js';

/** The file operations the message log uses; a test passes a failing disk. */
export type LogFs = Pick<typeof fsp, 'open' | 'mkdir' | 'rename' | 'unlink'>;

// Read access too: the last byte is read at open (see below). O_NOFOLLOW: a symlink planted at the
// log path must not redirect our appends into some other file (sshd's StrictModes reasoning).
const FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

/**
 * Opens (creating 0600, in folders created 0700: the log holds every peer's requests) the log for
 * appending and returns it with its size. Refuses a symlink at `path` and anything not a file.
 */
export async function openLogPath(
  path: string,
  fs: LogFs,
): Promise<{ file: FileHandle; size: number }> {
  // Not makePrivateFolder: the log's fs is injectable (a failing disk in tests).
  await fs.mkdir(dirname(path), { recursive: true, mode: PRIVATE_FOLDER_MODE });
  let file: FileHandle;
  try {
    file = await fs.open(path, FLAGS, PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOOP') throw err;
    throw Object.assign(
      new Error(`message log ${path} is a symbolic link; refusing to follow it (give its target)`),
      { code: 'ELOOP', cause: err },
    );
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw new Error(`message log ${path} is not a regular file`);
    let size = stat.size;
    // A crash in the middle of a write can leave half a record at the end: start on a new line,
    // so that half record stays one bad line instead of corrupting the first new one too.
    if (size > 0) {
      const last = Buffer.alloc(1);
      await file.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) size += (await file.write('\n')).bytesWritten;
    }
    return { file, size };
  } catch (err) {
    await file.close().catch(() => {});
    throw err;
  }
}

/**
 * logrotate's numbering: `path.(keep-1)` -> `path.keep` (replacing the oldest) … `path` ->
 * `path.1`. A name that is missing is skipped, so a rotation cut short by a crash or an error can
 * simply run again. Only names change: the data was made durable before, and the caller fsyncs
 * the folder before anything is promised in the new file.
 */
export async function shiftRotated(path: string, keep: number, fs: LogFs): Promise<void> {
  if (keep <= 0) return ignoreMissing(fs.unlink(path));
  for (let i = keep - 1; i >= 1; i--)
    await ignoreMissing(fs.rename(`${path}.${i}`, `${path}.${i + 1}`));
  await ignoreMissing(fs.rename(path, `${path}.1`));
}

/** Makes the folder's entries (a created or renamed log) durable, like fsync of the file's data. */
export function syncFolder(path: string, fs: LogFs): Promise<void> {
  return fsyncDir(dirname(path), fs);
}

async function ignoreMissing(op: Promise<void>): Promise<void> {
  try {
    await op;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
