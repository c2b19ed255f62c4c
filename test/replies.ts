import t from 'tap';
import fc from 'fast-check';
import {
  BYE_CODES,
  ERR_CODES,
  formatReply,
  parseReply,
  type Reply,
} from '../src/protocol/replies.js';

t.test('every reply kind round-trips through format and parse', async (t) => {
  const replies: Reply[] = [
    { kind: 'VALUE', value: 0 },
    { kind: 'OK', value: 99 },
    { kind: 'EVEN', value: 42 },
    { kind: 'ODD', value: 17 },
    { kind: 'PONG' },
    { kind: 'HELP', text: 'commands: PING' },
    { kind: 'BYE', code: null, text: '' },
    ...ERR_CODES.map((code): Reply => ({ kind: 'ERR', code, text: 'why' })),
    ...BYE_CODES.map((code): Reply => ({ kind: 'BYE', code, text: 'why' })),
  ];
  for (const r of replies) t.same(parseReply(formatReply(r)), r, formatReply(r));
});

t.test('the parser is strict', async (t) => {
  const bad = [
    '',
    'OK',
    'OK 07',
    'OK 100',
    'OK 5 ',
    'EVEN 3',
    'ODD 4',
    'PONG x',
    'BYE NOPE x',
    'ERR STORAGE',
    'ERR NOPE x',
    'HELP',
    'HELP \x01',
    'VALUE -1',
    'ok 5',
    'BYE  ',
    'ERR BAD_ARGS caf\u00e9',
  ];
  for (const line of bad) t.equal(parseReply(line), null, JSON.stringify(line));
});

t.test('property: parse(format(x)) === x for numeric replies', async (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom('VALUE', 'OK', 'EVEN', 'ODD'),
      fc.integer({ min: 0, max: 99 }),
      (kind, n) => {
        const value = kind === 'EVEN' ? n - (n % 2) : kind === 'ODD' ? n | 1 : n;
        const r = { kind, value } as Reply;
        return JSON.stringify(parseReply(formatReply(r))) === JSON.stringify(r);
      },
    ),
  );
  t.pass('property held');
});
