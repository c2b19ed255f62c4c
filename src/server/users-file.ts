import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { isValidId } from '../protocol/syntax.js';
import { writeFileAtomic } from '../store/atomic-write.js';

export type ScryptParams = { N: number; r: number; p: number };
export type UserEntry = { params: ScryptParams; salt: Buffer; hash: Buffer };
export type Users = ReadonlyMap<string, UserEntry>;

/**
 * Cost of new hashes: Node's default and the scrypt paper's interactive-login figure, about 50 ms
 * and 16 MiB per check. Each line carries its own parameters, so raising these later needs no
 * migration: old lines keep verifying with theirs, and `passwd` writes new ones.
 */
export const SCRYPT_DEFAULTS: ScryptParams = { N: 2 ** 14, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Most a users file line may ask for: an edited N=2^30 would make every AUTH allocate 128 GiB. */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

export class UsersFileError extends Error {}

// `alice:scrypt$16384$8$1$<salt base64>$<hash base64>`; base64 never contains `$` or `:`.
const LINE_RE = /^([^:]+):scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

export function formatEntry(id: string, { params, salt, hash }: UserEntry): string {
  const { N, r, p } = params;
  return `${id}:scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

function validParams({ N, r, p }: ScryptParams): boolean {
  const powerOfTwo = N >= 2 && (N & (N - 1)) === 0;
  return powerOfTwo && N <= MAX_N && r >= 1 && r <= MAX_R && p >= 1 && p <= MAX_P;
}

/** Parses a users file: one `id:scrypt$N$r$p$salt$hash` a line; blank lines and `#` comments. */
export function parseUsers(text: string, source = 'users file'): Map<string, UserEntry> {
  const users = new Map<string, UserEntry>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) return;
    const m = LINE_RE.exec(line);
    const where = `${source} line ${i + 1}`;
    if (m === null) throw new UsersFileError(`${where}: expected id:scrypt$N$r$p$salt$hash`);
    const [, id = '', N, r, p, salt = '', hash = ''] = m;
    const params = { N: Number(N), r: Number(r), p: Number(p) };
    if (!isValidId(id)) throw new UsersFileError(`${where}: invalid id`);
    if (!validParams(params)) throw new UsersFileError(`${where}: unsupported scrypt parameters`);
    if (users.has(id)) throw new UsersFileError(`${where}: ${id} appears twice`);
    const entry = { params, salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
    if (entry.hash.length < 16) throw new UsersFileError(`${where}: hash too short`);
    users.set(id, entry);
  });
  return users;
}

function derive(password: string, salt: Buffer, { N, r, p }: ScryptParams, length: number) {
  return new Promise<Buffer>((resolve, reject) =>
    // Async: scrypt runs on the libuv pool, so a check never stalls other connections.
    scrypt(password, salt, length, { N, r, p, maxmem: 256 * N * r + 2 ** 20 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export async function hashPassword(
  password: string,
  params: ScryptParams = SCRYPT_DEFAULTS,
): Promise<UserEntry> {
  const salt = randomBytes(SALT_BYTES);
  return { params, salt, hash: await derive(password, salt, params, HASH_BYTES) };
}

/** Constant-time check of `password` against `entry`. */
export async function verifyPassword(entry: UserEntry, password: string): Promise<boolean> {
  const key = await derive(password, entry.salt, entry.params, entry.hash.length);
  return timingSafeEqual(key, entry.hash);
}

/**
 * sshd's StrictModes: it ignores an authorized_keys file that others can write, since whoever can
 * write it can let themselves in. The same holds here, so such a users file is refused.
 */
export function usersFileModeProblem(mode: number): string | null {
  return (mode & 0o022) !== 0
    ? `is writable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`
    : null;
}

export async function loadUsers(path: string): Promise<Map<string, UserEntry>> {
  const handle = await fsp.open(path, 'r');
  try {
    const problem = usersFileModeProblem((await handle.stat()).mode);
    if (problem !== null) throw new UsersFileError(`${path} ${problem}`);
    return parseUsers(await handle.readFile('utf8'), path);
  } finally {
    await handle.close();
  }
}

/**
 * Sets `id`'s line in the users file, creating it 0600: the other lines are kept as they are, the
 * result is written to a temp file beside it, fsynced and renamed over it, so a reader (a server
 * reloading on SIGHUP) sees the old file or the new one, never a mix.
 */
export async function setUser(path: string, id: string, entry: UserEntry): Promise<void> {
  const old = await fsp.readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  parseUsers(old, path); // never rewrite a file we cannot read back
  const lines = old.split('\n').filter((l) => l !== '' && !l.startsWith(`${id}:`));
  const text = [...lines, formatEntry(id, entry)].join('\n') + '\n';
  // The store's atomic write: a random temp name opened O_EXCL|O_NOFOLLOW 0600, fsync, rename,
  // folder fsync. The users file is as private as the state file.
  await writeFileAtomic(path, text);
}
