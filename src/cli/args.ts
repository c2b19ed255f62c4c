/**
 * The first unknown flag or stray argument on the command line, or null. yargs' strict mode would
 * also reject PARITY_* environment variables meant for the other program (PARITY_ID for the
 * client, PARITY_STATE for the server), since both share the prefix; so both bins check the
 * command line themselves and let `.env('PARITY')` pick only the options they know.
 */
export function unknownArgument(
  argv: string[],
  known: Iterable<string>,
  positional: unknown[],
): string | null {
  const names = new Set([...known, 'help']);
  for (const arg of argv) {
    if (arg === '--') break;
    if (/^-\d/.test(arg)) continue; // a negative number given as a value, not a flag
    const name = /^--?(?:no-)?([^=]+)/.exec(arg)?.[1];
    if (name !== undefined && !names.has(name)) return name;
  }
  return positional.length > 0 ? String(positional[0]) : null;
}
