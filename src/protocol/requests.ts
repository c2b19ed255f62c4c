import {
  detached,
  echo,
  isValidId,
  isValidPassword,
  MAX_VALUE,
  parseValue,
  tokenize,
} from './syntax.js';
import type { ErrCode } from './replies.js';

export type Request =
  | { verb: 'HELLO'; id: string }
  | { verb: 'VALUE'; value: number }
  | { verb: 'EVEN' }
  | { verb: 'ODD' }
  | { verb: 'PING' }
  | { verb: 'HELP' }
  | { verb: 'QUIT' }
  | { verb: 'AUTH'; id: string; password: string };

export type Verb = Request['verb'];

export type ParsedLine =
  | { type: 'blank' }
  | { type: 'request'; request: Request }
  | { type: 'error'; code: ErrCode; text: string };

type Parse = (args: string[]) => Request | null;

const noArgs =
  <V extends Verb>(verb: V) =>
  (args: string[]) =>
    args.length === 0 ? ({ verb } as Request) : null;

/** One entry per verb: how its arguments parse, and the usage shown when they do not. */
const VERBS: Record<Verb, { parse: Parse; usage: string }> = {
  HELLO: {
    parse: (args) => {
      const id = args[0];
      return args.length === 1 && isValidId(id!) ? { verb: 'HELLO', id: detached(id!) } : null;
    },
    usage: 'HELLO <id>, id is 1-64 of A-Z a-z 0-9 _ . -',
  },
  VALUE: {
    parse: (args) => {
      const value = args.length === 1 ? parseValue(args[0]!) : null;
      return value === null ? null : { verb: 'VALUE', value };
    },
    usage: 'VALUE <n>, n is 0-99 without leading zeros',
  },
  EVEN: { parse: noArgs('EVEN'), usage: 'EVEN' },
  ODD: { parse: noArgs('ODD'), usage: 'ODD' },
  PING: { parse: noArgs('PING'), usage: 'PING' },
  HELP: { parse: noArgs('HELP'), usage: 'HELP' },
  QUIT: { parse: noArgs('QUIT'), usage: 'QUIT' },
  AUTH: {
    parse: ([id = '', password = '', ...rest]) =>
      rest.length === 0 && isValidId(id) && isValidPassword(password)
        ? { verb: 'AUTH', id: detached(id), password }
        : null,
    usage: 'AUTH <id> <password>, password is 1-256 of ! to ~ (no spaces)',
  },
};

export const VERB_NAMES = Object.keys(VERBS) as Verb[];

export const HELP_TEXT = `commands: ${VERB_NAMES.map((v) => VERBS[v].usage.split(',')[0]).join(', ')}; see protocol.md`;

// Checked before upper-casing: toUpperCase maps some non-ASCII letters onto ASCII ("quıt" -> "QUIT").
const ASCII_WORD_RE = /^[A-Za-z]+$/;

/**
 * A scan of eight short names, not `Object.hasOwn(VERBS, word)`: the word is a fresh string, and
 * hashing it for the lookup took 87 ns against 28 (a micro-benchmark), 3% of the server's CPU in
 * a flood of VALUEs.
 */
function isVerb(word: string): word is Verb {
  return (VERB_NAMES as string[]).includes(word);
}

/** The verb a word in another case names (`value`, `Hello`), or null. */
function folded(word: string): Verb | null {
  const upper = ASCII_WORD_RE.test(word) ? word.toUpperCase() : '';
  return isVerb(upper) ? upper : null;
}

/** Parses one request line (already without its LF/CRLF). Pure. */
export function parseRequest(line: string): ParsedLine {
  const value = canonicalValue(line);
  return value === null ? parseTokens(line) : PARSED_VALUES[value]!;
}

const ZERO = 0x30;

/**
 * n if the line is exactly `VALUE n` as bin/client sends it (one space, canonical 0-99), else
 * null: read by character code, with no tokens, regular expression or objects. A flood is nothing
 * but these lines, and their general parse took 9% of the server's CPU (BENCHMARKS.md, "Where the
 * time goes"). Any other spelling takes the general path; test/requests.ts holds the two equal.
 */
function canonicalValue(line: string): number | null {
  const n = line.length;
  if ((n !== 7 && n !== 8) || !line.startsWith('VALUE ')) return null;
  const tens = line.charCodeAt(6) - ZERO;
  if (tens < 0 || tens > 9) return null;
  if (n === 7) return tens;
  const ones = line.charCodeAt(7) - ZERO;
  return tens === 0 || ones < 0 || ones > 9 ? null : tens * 10 + ones;
}

/** Each canonical VALUE line's parse, made once and shared, so frozen. */
const PARSED_VALUES = Array.from(
  { length: MAX_VALUE + 1 },
  (_, value) =>
    Object.freeze({
      type: 'request',
      request: Object.freeze({ verb: 'VALUE', value }),
    }) as ParsedLine,
);

/** The general parse: tokens, verb, arguments. Exported for the test that holds the fast path to it. */
export function parseTokens(line: string): ParsedLine {
  const args = tokenize(line);
  const word = args.shift();
  if (word === undefined) return { type: 'blank' };
  // A verb as clients send it (upper case) is looked up as it is; only others are folded.
  const verb = isVerb(word) ? word : folded(word);
  if (verb === null) {
    return { type: 'error', code: 'UNKNOWN_COMMAND', text: `${echo(word)}; try HELP` };
  }
  const request = VERBS[verb].parse(args);
  if (request === null) {
    return { type: 'error', code: 'BAD_ARGS', text: `usage: ${VERBS[verb].usage}` };
  }
  return { type: 'request', request };
}
