import { isValidId, MAX_VALUE, MIN_VALUE } from '../protocol/syntax.js';

/** The state file is unusable; the server must stop and must not overwrite it. */
export class StateFileError extends Error {
  override name = 'StateFileError';
}

/**
 * Parses the state file's text: a flat JSON object of id -> value. Pure. Throws StateFileError
 * naming the first problem, so an operator can find it with `jq`.
 */
export function parseState(text: string): Map<string, number> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new StateFileError(`not valid JSON (${(err as Error).message})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new StateFileError('not a JSON object of id -> value');
  }
  // JSON.parse makes "__proto__" an own property, so Object.entries sees every id as plain data.
  const values = new Map<string, number>();
  for (const [id, value] of Object.entries(data)) {
    if (!isValidId(id)) throw new StateFileError(`invalid id ${JSON.stringify(id).slice(0, 80)}`);
    if (!Number.isInteger(value) || value < MIN_VALUE || value > MAX_VALUE) {
      throw new StateFileError(`value of "${id}" is not an integer ${MIN_VALUE}-${MAX_VALUE}`);
    }
    values.set(id, value as number);
  }
  return values;
}

/**
 * One id per line so `cat`, `grep` and `jq` all read it. Ids are [A-Za-z0-9_.-] (checked on the
 * way in), so they need no JSON escaping.
 */
export function serializeState(values: ReadonlyMap<string, number>): string {
  if (values.size === 0) return '{}\n';
  const parts: string[] = [];
  for (const [id, value] of values) parts.push(`  "${id}": ${value}`);
  return `{\n${parts.join(',\n')}\n}\n`;
}
