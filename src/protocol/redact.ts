import { tokenize } from './syntax.js';

/**
 * The request line as it may be logged: an AUTH line (any case, any spacing) becomes `AUTH <id>`
 * without its password, whether or not it parses. Every other line is returned as it is. Pure, so
 * the server's message log and the client's output share one rule and a test can hold it.
 */
export function redactRequestLine(line: string): string {
  const [verb, id] = tokenize(line);
  if (verb === undefined || !/^auth$/i.test(verb)) return line;
  return id === undefined ? verb : `${verb} ${id}`;
}
