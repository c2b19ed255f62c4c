import type { Readable, Writable } from 'node:stream';
import { isValidId, isValidPassword } from '../protocol/syntax.js';
import { hashPassword, setUser } from '../server/users-file.js';

const USAGE =
  'usage: parity-server passwd FILE ID\n' +
  'Reads the password (1-256 of ! to ~, no spaces) from standard input and sets it for ID in\n' +
  'FILE, creating FILE with mode 0600. Never put a password on the command line.\n';

export type PasswdIo = { stdin: Readable & { isTTY?: boolean }; stderr: Writable };

/** The first line of `stdin`; from a terminal, read without echo. */
export async function readPassword(io: PasswdIo): Promise<string> {
  const { stdin, stderr } = io;
  const tty = stdin.isTTY === true && 'setRawMode' in stdin;
  if (tty) {
    stderr.write('password: ');
    (stdin as NodeJS.ReadStream).setRawMode(true);
  }
  let text = '';
  try {
    for await (const chunk of stdin) {
      text += String(chunk);
      if (tty && text.includes('\u0003')) throw new Error('interrupted');
      if (/[\r\n]/.test(text)) break;
    }
  } finally {
    if (tty) {
      (stdin as NodeJS.ReadStream).setRawMode(false);
      stderr.write('\n');
    }
    stdin.pause();
  }
  return text.split(/\r?\n|\r/)[0] ?? '';
}

/** `parity-server passwd FILE ID`. Returns the exit code. */
export async function passwd(
  argv: string[],
  io: PasswdIo = { stdin: process.stdin, stderr: process.stderr },
): Promise<number> {
  const [file, id, ...rest] = argv;
  if (file === undefined || id === undefined || rest.length > 0 || file.startsWith('-')) {
    io.stderr.write(USAGE);
    return argv.includes('--help') ? 0 : 2;
  }
  if (!isValidId(id)) {
    io.stderr.write(`parity-server passwd: invalid id "${id}": use 1-64 of A-Z a-z 0-9 _ . -\n`);
    return 2;
  }
  try {
    const password = await readPassword(io);
    if (!isValidPassword(password)) {
      io.stderr.write('parity-server passwd: the password must be 1-256 of ! to ~ (no spaces)\n');
      return 2;
    }
    await setUser(file, id, await hashPassword(password));
  } catch (err) {
    io.stderr.write(`parity-server passwd: ${(err as Error).message}\n`);
    return 1;
  }
  io.stderr.write(`parity-server passwd: set ${id} in ${file}\n`);
  return 0;
}
