import { promises as fsp } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

/** As the kernel's own limit on symlinks followed in one lookup (ELOOP). */
const MAX_LINKS = 40;

/**
 * The real path a file path names, symlinks resolved, whether or not the file exists yet: the
 * file's own realpath if it exists; for a dangling symlink, where its target would be; otherwise
 * the folder's realpath joined with the name. Two paths name the same file exactly when their
 * real paths are equal, so the state lock and the writer both use this.
 */
export async function realFilePath(path: string, depth = 0): Promise<string> {
  try {
    return await fsp.realpath(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let target: string | null = null;
  try {
    target = await fsp.readlink(path); // a dangling symlink: follow it to where the file will be
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOENT') throw err;
  }
  if (target !== null) {
    if (depth >= MAX_LINKS) {
      throw Object.assign(new Error(`too many symbolic links: ${path}`), { code: 'ELOOP' });
    }
    return realFilePath(isAbsolute(target) ? target : join(dirname(path), target), depth + 1);
  }
  return join(await fsp.realpath(dirname(resolve(path))), basename(path));
}
