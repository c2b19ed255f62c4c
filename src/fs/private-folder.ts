import { promises as fsp, type Stats } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { realFilePath } from './real-path.js';
import { fsyncDir } from './sync-folder.js';

/** Mode of every folder the server creates: only its own user may list or change it. */
export const PRIVATE_FOLDER_MODE = 0o700;

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/** What checkPrivatePath reads: it looks, and never follows, opens or changes anything. */
type LookupFs = Pick<typeof fsp, 'lstat' | 'readlink'>;

/**
 * `mkdir -p` with mode 0700 for each folder it creates. The mode is passed to mkdir itself (the
 * umask can only remove bits, so it never widens it), and folders that already exist are left
 * as they are: their modes are the operator's, and checkPrivatePath says if they are unsafe.
 * Each new folder's name is made durable in its parent (fsync), as a new file's would be.
 */
export async function makePrivateFolder(
  dir: string,
  fs: Pick<typeof fsp, 'mkdir' | 'open'> = fsp,
): Promise<void> {
  const first = await fs.mkdir(dir, { recursive: true, mode: PRIVATE_FOLDER_MODE });
  if (first === undefined) return;
  for (let made = resolve(dir); ; made = dirname(made)) {
    await fsyncDir(dirname(made), fs);
    if (made === resolve(first) || made === dirname(made)) return;
  }
}

/**
 * StrictModes, as sshd applies it to ~/.ssh: refuse to keep a file where someone else could
 * replace it, or aim the server's writes elsewhere. `file` is looked up name by name (see
 * realFilePath) and every entry on the way is checked, the route through symlinks included:
 * - a symlink must belong to root or to the server's own user: another user's link could point
 *   at any file the server may write (the kernel's protected_symlinks, stricter and always on);
 * - a folder passed through must not be writable by group or others, unless the sticky bit is
 *   set (as on /tmp, where others may add names but not remove or rename ours), and must belong
 *   to root or the server's user (another owner can chmod it);
 * - the folder that holds the file must not be writable by anyone else at all, sticky or not:
 *   there others could plant the names the server is about to create (journal generations, a
 *   reopened log) before it does.
 * A folder that does not exist yet is not checked: call this again once makePrivateFolder made it.
 * Throws an Error whose message names the entry and the command that fixes it.
 */
export async function checkPrivatePath(file: string, fs: LookupFs = fsp): Promise<void> {
  const uid = process.getuid?.() ?? 0;
  const passed: { path: string; stat: Stats }[] = [{ path: sep, stat: await fs.lstat(sep) }];
  const real = await realFilePath(file, (path, stat) => passed.push({ path, stat }), fs);
  const holder = dirname(real);
  for (const { path, stat } of passed) {
    const trusted = stat.uid === 0 || stat.uid === uid;
    if (stat.isSymbolicLink() && !trusted) {
      throw new Error(
        `unsafe symlink: ${path}, on the way to ${file}, belongs to uid ${stat.uid}, who could ` +
          `point it at any file; remove it, or give the path it points to`,
      );
    }
    if (!stat.isDirectory()) continue;
    const where = path === holder ? 'folder' : `folder above ${holder},`;
    const shared = (stat.mode & STICKY) !== 0 && path !== holder;
    if ((stat.mode & GROUP_OR_OTHER_WRITE) !== 0 && !shared) {
      const octal = (stat.mode & 0o7777).toString(8).padStart(4, '0');
      if ((stat.mode & STICKY) !== 0) {
        // Never advise `chmod go-w` on a shared folder such as /tmp: that breaks it for everyone.
        throw new Error(
          `unsafe permissions: the folder ${path} (mode ${octal}) is shared: other users can ` +
            'create the names the server is about to create in it; give the file a folder of ' +
            `its own, such as ${join(path, 'parity')}/ (the server creates it 0700)`,
        );
      }
      throw new Error(
        `unsafe permissions: the ${where} ${path} (mode ${octal}) is writable by other users, who ` +
          `could replace the files in it; fix with \`chmod go-w ${path}\`` +
          (path === holder ? '' : ` (or \`chmod +t ${path}\` for a shared folder like /tmp)`),
      );
    }
    if (!trusted) {
      throw new Error(
        `unsafe ownership: the ${where} ${path} belongs to uid ${stat.uid}, who could change its ` +
          `permissions; fix with \`chown ${uid} ${path}\` or run the server as that user`,
      );
    }
  }
}
