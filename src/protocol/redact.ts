import { tokenize } from './syntax.js';

/** Whether the line's first token can be AUTH: its first non-blank character is an A. */
function mayBeAuth(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c !== ' ' && c !== '\t') return c === 'a' || c === 'A';
  }
  return false;
}

/**
 * The request line as it may be logged: an AUTH line (any case, any spacing) becomes `AUTH <id>`
 * without its password, whether or not it parses. Every other line is returned as it is. Pure, so
 * the server's message log and the client's output share one rule and a test can hold it. Most
 * lines are not AUTH, and the first character says so without tokenizing (this runs per request).
 */
export function redactRequestLine(line: string): string {
  if (!mayBeAuth(line)) return line;
  const [verb, id] = tokenize(line);
  if (verb === undefined || !/^auth$/i.test(verb)) return line;
  return id === undefined ? verb : `${verb} ${id}`;
}
