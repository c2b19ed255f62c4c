import { isValidId, MAX_VALUE, MIN_VALUE } from '../protocol/syntax.js';
import { StateFileError } from './state-errors.js';
import type { StateTable } from './state-table.js';

/** Where the general parser starts: at the beginning, or where the own-layout reader left off. */
export type Resume = 'start' | 'key-or-close' | 'key' | 'comma-or-close' | 'done';

// Parser states (numbers: this loop runs once per character of a hand-edited file).
const VALUE = 0; // a value: the top level, after ':', after ',' in an array
const VALUE_OR_CLOSE = 1; // after '['
const KEY_OR_CLOSE = 2; // after '{'
const KEY = 3; // after ',' in an object
const COLON = 4;
const COMMA_OR_CLOSE = 5; // after a value in an object or array
const DONE = 6; // after the top-level value: only whitespace may follow
const STRING = 7;
const NUMBER = 8;
const LITERAL = 9;

const RESUME: Record<Resume, number> = {
  start: VALUE,
  'key-or-close': KEY_OR_CLOSE,
  key: KEY,
  'comma-or-close': COMMA_OR_CLOSE,
  done: DONE,
};

// Number grammar (RFC 8259): -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
const N_SIGN = 0;
const N_ZERO = 1;
const N_INT = 2;
const N_DOT = 3;
const N_FRAC = 4;
const N_E = 5;
const N_E_SIGN = 6;
const N_EXP = 7;
const NUMBER_ENDS = new Set([N_ZERO, N_INT, N_FRAC, N_EXP]);

/** Longest key kept: any id over 64 characters is invalid, and messages quote at most 80. */
const KEY_CAP = 100;
/** Longest number kept to evaluate; a longer one (`1.000…`) counts as not an integer 0-99. */
const NUMBER_CAP = 1024;

const ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};
const LITERALS: Record<string, string> = { t: 'true', f: 'false', n: 'null' };
const HEX_RE = /^[0-9A-Fa-f]$/;
const BLANKS_RE = /[ \t\r]+/y;

const isDigit = (c: string) => c >= '0' && c <= '9';

/**
 * An incremental JSON parser for the state file's shape, a flat object of id -> integer: text in
 * (any split), entries out into a StateTable. Pure, and it never holds more than one key or
 * number, so a file of any size loads in bounded extra memory.
 *
 * It accepts exactly what JSON.parse accepts and reports problems in the same order as parsing
 * the whole file first would: any syntax error (thrown as soon as it is seen), then a top level
 * that is not an object, then the first invalid id or value. A repeated id is one entry whose
 * last value wins, as with JSON.parse, so a bad value is an error only if no later one replaces
 * it. Ids are kept in file order (JSON.parse would move integer-like ids such as "7" first).
 */
export class JsonStateParser {
  #table: StateTable;
  #state: number;
  #stack: Array<'{' | '['>;
  #notObject = false;
  /** Bad entries by id, in file order, until one that no later entry can repair (a bad id). */
  #errors = new Map<string, string>();
  #final = false;
  // The string, number or literal being read.
  #isKey = false;
  #keepKey = false; // a key of the top-level object: its text is the id
  #text = '';
  #escape = -1; // -1: none; 0: after '\'; 1-4: \u hex digits still to read
  #hex = '';
  #numberState = 0;
  #literal = '';
  #key: string | null = null; // the id whose value is being read, at the top level
  // Position, for messages.
  #line: number;
  #consumed = 0; // characters before the current chunk
  #lineStart = 0;

  constructor(table: StateTable, resume: Resume = 'start', line = 1) {
    this.#table = table;
    this.#state = RESUME[resume];
    this.#stack = resume === 'start' || resume === 'done' ? [] : ['{'];
    this.#line = line;
  }

  push(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      switch (this.#state) {
        case STRING:
          this.#stringChar(c, i);
          break;
        case NUMBER:
          if (this.#numberChar(c)) break;
          if (!NUMBER_ENDS.has(this.#numberState)) this.#fail(`unexpected ${show(c)}`, i);
          this.#endNumber();
          i--; // the character after the number is read again in the new state
          break;
        case LITERAL:
          this.#literalChar(c, i);
          break;
        default:
          if (c === '\n') {
            this.#line++;
            this.#lineStart = this.#consumed + i + 1;
          } else if (c === ' ' || c === '\t' || c === '\r') {
            // Indentation comes in runs (a reformatted file is mostly spaces): skip the run at once.
            BLANKS_RE.lastIndex = i;
            if (BLANKS_RE.test(text)) i = BLANKS_RE.lastIndex - 1;
          } else {
            this.#structural(c, i);
          }
      }
    }
    this.#consumed += text.length;
  }

  /** The table, once the whole text was pushed; throws StateFileError naming the first problem. */
  end(): StateTable {
    if (this.#state === NUMBER && NUMBER_ENDS.has(this.#numberState)) this.#endNumber();
    if (this.#state !== DONE) this.#fail('unexpected end of input', 0, false);
    if (this.#notObject) throw new StateFileError('not a JSON object of id -> value');
    for (const message of this.#errors.values()) throw new StateFileError(message);
    return this.#table;
  }

  #structural(c: string, i: number): void {
    const state = this.#state;
    if (state === VALUE || state === VALUE_OR_CLOSE) {
      if (state === VALUE_OR_CLOSE && c === ']') return this.#close('[', i);
      return this.#startValue(c, i);
    }
    if (state === KEY_OR_CLOSE || state === KEY) {
      if (state === KEY_OR_CLOSE && c === '}') return this.#close('{', i);
      if (c !== '"') return this.#fail(`expected a key in quotes, found ${show(c)}`, i);
      return this.#startString(true);
    }
    if (state === COLON) {
      if (c !== ':') return this.#fail(`expected ':', found ${show(c)}`, i);
      this.#state = VALUE;
      return;
    }
    if (state === COMMA_OR_CLOSE) {
      const top = this.#stack[this.#stack.length - 1];
      if (c === ',') {
        this.#state = top === '{' ? KEY : VALUE;
        return;
      }
      if ((c === '}' && top === '{') || (c === ']' && top === '[')) return this.#close(top, i);
      return this.#fail(`expected ',' or '${top === '{' ? '}' : ']'}', found ${show(c)}`, i);
    }
    this.#fail(`unexpected ${show(c)} after the end`, i);
  }

  #startValue(c: string, i: number): void {
    const depth = this.#stack.length;
    if (depth === 0 && c !== '{') this.#notObject = true;
    // A value of the top-level object that cannot be an integer: known bad from its first character.
    const entry = depth === 1 && this.#stack[0] === '{';
    if (entry && c !== '-' && !isDigit(c)) this.#badValue();
    if (c === '{' || c === '[') {
      this.#stack.push(c);
      this.#state = c === '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
    } else if (c === '"') {
      this.#startString(false);
    } else if (c === '-' || isDigit(c)) {
      this.#state = NUMBER;
      this.#text = '';
      this.#numberState = N_SIGN;
      this.#numberChar(c);
    } else if (LITERALS[c] !== undefined) {
      this.#state = LITERAL;
      this.#literal = c;
    } else {
      this.#fail(`unexpected ${show(c)}`, i);
    }
  }

  #close(bracket: '{' | '[', i: number): void {
    if (this.#stack.pop() !== bracket) this.#fail('mismatched bracket', i);
    this.#valueDone();
  }

  #valueDone(): void {
    this.#state = this.#stack.length === 0 ? DONE : COMMA_OR_CLOSE;
  }

  #startString(isKey: boolean): void {
    this.#state = STRING;
    this.#isKey = isKey;
    // Only top-level keys are kept; every other string is only checked.
    this.#keepKey = isKey && this.#stack.length === 1 && this.#stack[0] === '{';
    this.#text = '';
    this.#escape = -1;
  }

  #stringChar(c: string, i: number): void {
    if (this.#escape === 0) {
      if (c === 'u') {
        this.#escape = 4;
        this.#hex = '';
        return;
      }
      const decoded = ESCAPES[c];
      if (decoded === undefined) return this.#fail(`bad escape \\${show(c)} in a string`, i);
      this.#escape = -1;
      return this.#keyChar(decoded);
    }
    if (this.#escape > 0) {
      if (!HEX_RE.test(c)) return this.#fail(`bad \\u escape in a string`, i);
      this.#hex += c;
      if (--this.#escape === 0) {
        this.#escape = -1;
        this.#keyChar(String.fromCharCode(parseInt(this.#hex, 16)));
      }
      return;
    }
    if (c === '"') return this.#endString();
    if (c === '\\') {
      this.#escape = 0;
      return;
    }
    if (c < ' ') return this.#fail(`control character ${show(c)} in a string`, i);
    this.#keyChar(c);
  }

  #keyChar(c: string): void {
    if (this.#keepKey && this.#text.length < KEY_CAP) this.#text += c;
  }

  #endString(): void {
    if (!this.#isKey) return this.#valueDone();
    if (this.#keepKey) this.#key = this.#text;
    this.#state = COLON;
  }

  #numberChar(c: string): boolean {
    const s = this.#numberState;
    let next = -1;
    if (isDigit(c)) {
      if (s === N_SIGN) next = c === '0' ? N_ZERO : N_INT;
      else if (s === N_INT || s === N_FRAC || s === N_EXP) next = s;
      else if (s === N_DOT) next = N_FRAC;
      else if (s === N_E || s === N_E_SIGN) next = N_EXP;
    } else if (c === '.') {
      if (s === N_ZERO || s === N_INT) next = N_DOT;
    } else if (c === 'e' || c === 'E') {
      if (s === N_ZERO || s === N_INT || s === N_FRAC) next = N_E;
    } else if (c === '+' || c === '-') {
      if (s === N_E) next = N_E_SIGN;
      else if (s === N_SIGN && c === '-' && this.#text === '') next = N_SIGN;
    }
    if (next === -1) return false;
    this.#numberState = next;
    if (this.#text.length <= NUMBER_CAP) this.#text += c;
    return true;
  }

  #endNumber(): void {
    if (this.#stack.length === 1 && this.#stack[0] === '{') {
      const value = this.#text.length > NUMBER_CAP ? NaN : Number(this.#text);
      if (Number.isInteger(value) && value >= MIN_VALUE && value <= MAX_VALUE) {
        this.#entry(value === 0 ? 0 : value); // -0 is 0
      } else {
        this.#badValue();
      }
    }
    this.#valueDone();
  }

  #literalChar(c: string, i: number): void {
    const word = LITERALS[this.#literal[0]!]!;
    if (c !== word[this.#literal.length]) return this.#fail(`unexpected ${show(c)}`, i);
    this.#literal += c;
    if (this.#literal === word) this.#valueDone();
  }

  #entry(value: number): void {
    const id = this.#key!;
    if (!isValidId(id)) return this.#error(id, `invalid id ${JSON.stringify(id).slice(0, 80)}`);
    this.#errors.delete(id); // a later good value replaces a bad one, as in JSON.parse
    this.#table.set(id, value);
  }

  #badValue(): void {
    const id = this.#key!;
    if (!isValidId(id)) return this.#error(id, `invalid id ${JSON.stringify(id).slice(0, 80)}`);
    this.#error(id, `value of "${id}" is not an integer ${MIN_VALUE}-${MAX_VALUE}`);
    // Keep the id's place (JSON.parse keeps the first position of a repeated key); if no later
    // value repairs it, the error is thrown and the table is never used.
    this.#table.set(id, 0);
  }

  #error(id: string, message: string): void {
    if (this.#final) return; // an earlier error already stands
    if (!this.#errors.has(id)) this.#errors.set(id, message);
    if (!isValidId(id)) this.#final = true;
  }

  #fail(what: string, i: number, positioned = true): never {
    const column = this.#consumed + i - this.#lineStart + 1;
    const where = positioned ? ` at line ${this.#line} column ${column}` : '';
    throw new StateFileError(`not valid JSON (${what}${where})`);
  }
}

function show(c: string): string {
  return JSON.stringify(c);
}
