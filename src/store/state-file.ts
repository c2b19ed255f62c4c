import { isValidId, MAX_VALUE, MIN_VALUE } from '../protocol/syntax.js';
import { StateTable } from './state-table.js';

/** The state file is unusable; the server must stop and must not overwrite it. */
export class StateFileError extends Error {
  override name = 'StateFileError';
}

// The exact layout StateTable.serialize writes. Anything else (a file edited by hand, reformatted
// by jq) takes the general JSON path, which accepts the same data, only more slowly.
const ENTRY_RE = /^ {2}"([A-Za-z0-9_.-]{1,64})": {1,2}(0|[1-9][0-9]?)(,?)$/;

/**
 * Parses the state file's text: a flat JSON object of id -> value. Pure. Throws StateFileError
 * naming the first problem, so an operator can find it with `jq`.
 */
export function parseState(text: string): StateTable {
  return parseOwnLayout(text) ?? parseJson(text);
}

/** The file's text for these entries (see StateTable.serialize). */
export function serializeState(entries: Iterable<[string, number]>): string {
  const table = new StateTable();
  for (const [id, value] of entries) table.set(id, value);
  return table.serialize().toString();
}

/** Our own layout, one entry per line, without JSON.parse: 1M ids load in well under a second. */
function parseOwnLayout(text: string): StateTable | null {
  if (text === '{}\n') return new StateTable();
  const lines = text.split('\n');
  const last = lines.length - 3; // index of the last entry: "{", entries..., "}", ""
  if (last < 1 || lines[0] !== '{' || lines[last + 1] !== '}' || lines[last + 2] !== '')
    return null;
  const table = new StateTable();
  for (let i = 1; i <= last; i++) {
    const m = ENTRY_RE.exec(lines[i]!);
    // Every entry but the last ends with a comma; a mismatch means hand-edited JSON.
    if (m === null || (m[3] === ',') !== i < last) return null;
    table.set(m[1]!, Number(m[2]));
  }
  return table;
}

function parseJson(text: string): StateTable {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new StateFileError(`not valid JSON (${(err as Error).message})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new StateFileError('not a JSON object of id -> value');
  }
  // JSON.parse makes "__proto__" an own property, so every id is seen as plain data.
  const table = new StateTable();
  const record = data as Record<string, unknown>;
  for (const id in record) {
    if (!Object.hasOwn(record, id)) continue;
    const value = record[id];
    if (!isValidId(id)) throw new StateFileError(`invalid id ${JSON.stringify(id).slice(0, 80)}`);
    if (
      typeof value !== 'number' ||
      !Number.isInteger(value) ||
      value < MIN_VALUE ||
      value > MAX_VALUE
    ) {
      throw new StateFileError(`value of "${id}" is not an integer ${MIN_VALUE}-${MAX_VALUE}`);
    }
    table.set(id, value);
  }
  return table;
}
