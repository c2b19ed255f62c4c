import { promises as fsp } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Mode of every folder the server creates: only its own user may list or change it. */
export const PRIVATE_FOLDER_MODE = 0o700;

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/**
 * `mkdir -p` with mode 0700 for each folder it creates. The mode is passed to mkdir itself (the
 * umask can only remove bits, so it never widens it), and folders that already exist are left
 * as they are: their modes are the operator's, and checkPrivateFolder says if they are unsafe.
 */
export async function makePrivateFolder(
  dir: string,
  fs: Pick<typeof fsp, 'mkdir'> = fsp,
): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: PRIVATE_FOLDER_MODE });
}

/**
 * StrictModes, as sshd applies it to ~/.ssh: refuse to keep files in a folder that someone else
 * could change. Another user who may write to the folder (or to any folder above it) can rename
 * the state file away, or plant a file or symlink where the server will look, so the server must
 * not start there. Checked for `dir` and each of its ancestors up to `/`, as sshd does:
 * - writable by group or others: refused, unless the sticky bit is set (as on /tmp, where others
 *   may add entries but not remove or rename ours);
 * - owned by a user other than root or the server's own user: refused (that owner can chmod it).
 * Folders that do not exist yet are skipped: makePrivateFolder creates them 0700.
 * Throws an Error whose message names the folder and the command that fixes it.
 */
export async function checkPrivateFolder(
  dir: string,
  fs: Pick<typeof fsp, 'stat'> = fsp,
): Promise<void> {
  const uid = process.getuid?.() ?? 0;
  for (let at = resolve(dir); ; at = dirname(at)) {
    let mode: number;
    let owner: number;
    try {
      ({ mode, uid: owner } = await fs.stat(at));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (at === dirname(at)) return;
      continue;
    }
    const who = at === resolve(dir) ? 'folder' : `folder above ${dir},`;
    if ((mode & GROUP_OR_OTHER_WRITE) !== 0 && (mode & STICKY) === 0) {
      const octal = (mode & 0o7777).toString(8).padStart(4, '0');
      throw new Error(
        `unsafe permissions: the ${who} ${at} (mode ${octal}) is writable by other users, who ` +
          `could replace the files in it; fix with \`chmod go-w ${at}\` (or \`chmod +t ${at}\` ` +
          'for a shared folder like /tmp)',
      );
    }
    if (owner !== 0 && owner !== uid) {
      throw new Error(
        `unsafe ownership: the ${who} ${at} belongs to uid ${owner}, who could change its ` +
          `permissions; fix with \`chown ${uid} ${at}\` or run the server as that user`,
      );
    }
    if (at === dirname(at)) return;
  }
}
