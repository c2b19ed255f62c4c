import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

/** Mode of every file the server creates: the state holds its clients' data, for its user only. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Create a new file, never reuse or follow one. O_EXCL fails with EEXIST if anything (a file, a
 * symlink, even a dangling one) already has the name, and O_NOFOLLOW refuses a symlink as the last
 * component, so a name another user planted in the folder can make the open fail but can never
 * aim the write at some other file.
 */
export const EXCLUSIVE_CREATE =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Opens `path` as a new private file (see EXCLUSIVE_CREATE). */
export function openExclusive(
  path: string,
  fs: Pick<typeof fsp, 'open'> = fsp,
): Promise<FileHandle> {
  return fs.open(path, EXCLUSIVE_CREATE, PRIVATE_FILE_MODE);
}

/**
 * A name suffix nobody can guess: 96 random bits, so another user cannot plant the temp file's
 * name ahead of time (a pid and a counter can be predicted).
 */
export function unguessable(random: (bytes: number) => Buffer = randomBytes): string {
  return random(12).toString('hex');
}
