import { ECHO_CAP } from '../limits.js';

/** Lowest and highest counter value; every value on the wire is within. */
export const MIN_VALUE = 0;
export const MAX_VALUE = 99;

// Canonical decimal 0-99: no sign, leading zero, fraction, exponent or non-ASCII digit.
// `Number()` and `parseInt` accept most of those, so the pattern decides.
const VALUE_RE = /^(?:0|[1-9][0-9]?)$/;
const ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * A copy of `text` that shares no memory with the string it was cut from. A request line is a
 * slice of its whole read's string (decoder.ts), and V8 keeps a slice's parent alive: an id kept
 * for a connection's life would keep up to a 64 KiB read with it. HELLO and AUTH are once a
 * connection, so the copy costs nothing that matters.
 */
export function detached(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

/** The value `text` denotes, or null unless it is a canonical 0-99. */
export function parseValue(text: string): number | null {
  return VALUE_RE.test(text) ? Number(text) : null;
}

export function isValidId(text: string): boolean {
  return ID_RE.test(text);
}

// A password is one token, so no space or tab; printable ASCII only, so it types the same anywhere.
const PASSWORD_RE = /^[\x21-\x7e]{1,256}$/;

export function isValidPassword(text: string): boolean {
  return PASSWORD_RE.test(text);
}

/**
 * Short, quoted, printable-ASCII echo of peer input, safe to put in a reply or a terminal. `bytes`
 * is a byte string as the decoder returns it (one char per byte), so the cap counts bytes and each
 * byte outside printable ASCII, not each character, becomes `?` (as protocol.md says).
 */
export function echo(bytes: string): string {
  const cut = bytes.length > ECHO_CAP ? bytes.slice(0, ECHO_CAP) + '...' : bytes;
  return `"${cut.replace(/[^\x20-\x7e]/g, '?')}"`;
}

const SPACE = 0x20;
const TAB = 0x09;

/**
 * The line's tokens; empty for a blank or whitespace-only line. Tokens are separated by runs of
 * spaces and tabs only: String#trim and \s would also eat CR, VT, NBSP and other characters that
 * are data here. A scan, not `replace` + `split`: this runs for every request line, and the two
 * regular expressions took 731 ms of a 10.8 s profile under a flood of VALUEs (the scan 130 ms).
 */
export function tokenize(line: string): string[] {
  const tokens: string[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === SPACE || c === TAB) {
      i++;
      continue;
    }
    const start = i;
    do c = line.charCodeAt(++i);
    while (i < n && c !== SPACE && c !== TAB);
    tokens.push(line.slice(start, i));
  }
  return tokens;
}
