import { promises as fsp, type Stats } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';

/** As the kernel's own limit on symlinks followed in one lookup (ELOOP). */
const MAX_LINKS = 40;

/** Called with every entry the lookup passes that exists: each folder, each symlink, the file. */
export type LookupStep = (path: string, stat: Stats) => void;

/**
 * The real path a file path names, symlinks resolved, whether or not the file exists yet. The
 * lookup goes one name at a time, as the kernel's does: a symlink's target takes its place (a
 * dangling one too, so the path names where the file will be), `..` goes to the parent of the
 * folder actually reached, and from the first name that does not exist the rest is appended as
 * written. Two paths name the same file exactly when their real paths are equal, so the state
 * lock and the writer both use this; `step` sees every folder and symlink on the way, so
 * checkPrivatePath can judge who could have planted them.
 */
export async function realFilePath(
  path: string,
  step: LookupStep = () => {},
  fs: Pick<typeof fsp, 'lstat' | 'readlink'> = fsp,
): Promise<string> {
  // Not resolve(path): that would take `..` after a symlink lexically, where the kernel goes to the
  // parent of the link's target.
  const todo = names(isAbsolute(path) ? path : `${process.cwd()}${sep}${path}`); // next name last
  let at: string = sep;
  let links = 0;
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (name === '..') {
      at = resolve(at, '..');
      continue;
    }
    const next = join(at, name);
    let stat: Stats;
    try {
      stat = await fs.lstat(next);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return resolve(next, ...todo.reverse());
    }
    step(next, stat);
    if (!stat.isSymbolicLink()) {
      at = next;
      continue;
    }
    if (++links > MAX_LINKS) {
      throw Object.assign(new Error(`too many symbolic links: ${path}`), { code: 'ELOOP' });
    }
    const target = await fs.readlink(next);
    if (target.startsWith(sep)) at = sep;
    todo.push(...names(target));
  }
  return at;
}

/** The names of a path in reverse order (a stack), without empty names or `.`. */
function names(path: string): string[] {
  return path
    .split(sep)
    .filter((n) => n !== '' && n !== '.')
    .reverse();
}
