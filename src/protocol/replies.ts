import { isValidId, parseValue } from './syntax.js';

export const ERR_CODES = [
  'UNKNOWN_COMMAND',
  'BAD_ARGS',
  'NOT_IDENTIFIED',
  'ALREADY_IDENTIFIED',
  'STORAGE',
  'ID_LIMIT',
  'TAKEN_OVER',
  'AUTH_REQUIRED',
  'AUTH_FAILED',
  'FORBIDDEN',
  'AUTH_DISABLED',
] as const;
export const BYE_CODES = [
  'LINE_TOO_LONG',
  'TAKEN_OVER',
  'SERVER_BUSY',
  'IDLE_TIMEOUT',
  'SHUTTING_DOWN',
  'AUTH_FAILED',
] as const;

export type ErrCode = (typeof ERR_CODES)[number];
export type ByeCode = (typeof BYE_CODES)[number];

export type Reply =
  | { kind: 'VALUE'; value: number }
  | { kind: 'OK'; value: number }
  | { kind: 'EVEN'; value: number }
  | { kind: 'ODD'; value: number }
  | { kind: 'PONG' }
  | { kind: 'HELP'; text: string }
  | { kind: 'BYE'; code: ByeCode | null; text: string }
  | { kind: 'ERR'; code: ErrCode; text: string }
  | { kind: 'AUTHED'; id: string };

/** The reply's line, without its LF. */
export function formatReply(reply: Reply): string {
  switch (reply.kind) {
    case 'VALUE':
    case 'OK':
    case 'EVEN':
    case 'ODD':
      return `${reply.kind} ${reply.value}`;
    case 'PONG':
      return 'PONG';
    case 'HELP':
      return `HELP ${reply.text}`;
    case 'BYE':
      return reply.code === null ? 'BYE' : `BYE ${reply.code} ${reply.text}`;
    case 'ERR':
      return `ERR ${reply.code} ${reply.text}`;
    case 'AUTHED':
      return `AUTHED ${reply.id}`;
  }
}

const NUMBER_KINDS = new Set(['VALUE', 'OK', 'EVEN', 'ODD']);
const PRINTABLE_RE = /^[\x20-\x7e]+$/;

function isOneOf<T extends string>(list: readonly T[], word: string | undefined): word is T {
  return (list as readonly string[]).includes(word ?? '');
}

/**
 * Parses one reply line, strictly: the exact grammar of protocol.md, or null. Used by the client
 * and by tests that check every line the server sends.
 */
export function parseReply(line: string): Reply | null {
  const space = line.indexOf(' ');
  const kind = space === -1 ? line : line.slice(0, space);
  const rest = space === -1 ? null : line.slice(space + 1);
  if (NUMBER_KINDS.has(kind)) {
    const value = rest === null ? null : parseValue(rest);
    if (value === null) return null;
    if (kind === 'EVEN' && value % 2 !== 0) return null;
    if (kind === 'ODD' && value % 2 !== 1) return null;
    return { kind: kind as 'VALUE' | 'OK' | 'EVEN' | 'ODD', value };
  }
  if (kind === 'PONG' || (kind === 'BYE' && rest === null)) {
    return rest === null ? (kind === 'PONG' ? { kind } : { kind, code: null, text: '' }) : null;
  }
  if (kind === 'AUTHED') return rest !== null && isValidId(rest) ? { kind, id: rest } : null;
  if (rest === null || !PRINTABLE_RE.test(rest)) return null;
  if (kind === 'HELP') return { kind, text: rest };
  const codeEnd = rest.indexOf(' ');
  const code = codeEnd === -1 ? undefined : rest.slice(0, codeEnd);
  const text = rest.slice(codeEnd + 1);
  if (kind === 'ERR' && isOneOf(ERR_CODES, code)) return { kind, code, text };
  if (kind === 'BYE' && isOneOf(BYE_CODES, code)) return { kind, code, text };
  return null;
}
