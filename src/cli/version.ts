import { readFileSync } from 'node:fs';

/**
 * The version in package.json, read at run time relative to this module (dist/cli/ or src/cli/,
 * both two levels below the package root), so it is right wherever the package is installed.
 */
export function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  const { version } = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
  return typeof version === 'string' ? version : 'unknown';
}
