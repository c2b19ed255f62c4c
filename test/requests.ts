import t from 'tap';
import fc from 'fast-check';
import { parseRequest, parseTokens, HELP_TEXT } from '../src/protocol/requests.js';
import { parseValue, isValidId, echo, tokenize } from '../src/protocol/syntax.js';

const req = (line: string) => {
  const p = parseRequest(line);
  return p.type === 'request' ? p.request : p.type === 'error' ? p.code : 'blank';
};

t.test('every verb, any case, spaces and tabs between tokens', async (t) => {
  t.same(req('HELLO alice'), { verb: 'HELLO', id: 'alice' });
  t.same(req('hello\t \tAlice '), { verb: 'HELLO', id: 'Alice' }, 'ids keep their case');
  t.same(req('  Value 42'), { verb: 'VALUE', value: 42 });
  for (const verb of ['EVEN', 'ODD', 'PING', 'HELP', 'QUIT']) {
    t.same(req(verb.toLowerCase()), { verb });
  }
});

t.test('blank and whitespace-only lines', async (t) => {
  for (const line of ['', ' ', '\t', ' \t  ']) t.equal(req(line), 'blank');
  t.equal(req('\r'), 'UNKNOWN_COMMAND', 'CR is data, not whitespace');
  t.equal(req('\u00a0'), 'UNKNOWN_COMMAND', 'NBSP is data, not whitespace');
});

t.test('unknown verbs', async (t) => {
  for (const line of [
    'FROB',
    'ERR',
    'OK 5',
    'HELLOalice',
    'quıt',
    'ＰＩＮＧ',
    '__proto__',
    'constructor',
  ]) {
    t.equal(req(line), 'UNKNOWN_COMMAND', line);
  }
});

t.test('bad arguments', async (t) => {
  const bad = [
    'EVEN 5',
    'ODD x',
    'PING now',
    'HELP me',
    'QUIT now',
    'HELLO',
    'HELLO a/b',
    'HELLO a b',
    'HELLO ' + 'x'.repeat(65),
    'HELLO ../etc',
    'HELLO é',
    'VALUE',
    'VALUE 7x',
    'VALUE 1 2',
    'VALUE 07',
    'VALUE 00',
    'VALUE 100',
    'VALUE -1',
    'VALUE +5',
    'VALUE 5.0',
    'VALUE 1e1',
    'VALUE 0x1',
    'VALUE 1_0',
    'VALUE ٥',
    'VALUE ５',
    'VALUE  ',
  ];
  for (const line of bad) t.equal(req(line), 'BAD_ARGS', line);
  t.same(req('HELLO ' + 'x'.repeat(64)), { verb: 'HELLO', id: 'x'.repeat(64) });
  t.same(req('HELLO __proto__'), { verb: 'HELLO', id: '__proto__' });
  t.same(req('HELLO a.b-c_D9'), { verb: 'HELLO', id: 'a.b-c_D9' });
});

t.test('error texts are short, printable and say what to do', async (t) => {
  const p = parseRequest('\x1b[31m' + 'Z'.repeat(200));
  t.equal(p.type, 'error');
  if (p.type === 'error') {
    t.match(p.text, /^"\?\[31mZ+\.\.\."; try HELP$/);
    t.ok(p.text.length < 60);
  }
  const v = parseRequest('VALUE 07');
  t.match(v.type === 'error' && v.text, /usage: VALUE <n>/);
  t.match(HELP_TEXT, /HELLO <id>, VALUE <n>, EVEN, ODD, PING, HELP, QUIT/);
});

t.test('parseValue accepts exactly the canonical 0-99', async (t) => {
  const accepted: number[] = [];
  for (let i = 0; i < 1000; i++) {
    for (const text of [String(i), '0' + i, '+' + i, i + '.0']) {
      const v = parseValue(text);
      if (v !== null) accepted.push(v);
    }
  }
  t.same(
    accepted,
    Array.from({ length: 100 }, (_, i) => i),
  );
  fc.assert(
    fc.property(fc.string(), (s) => {
      const v = parseValue(s);
      return v === null || (String(v) === s && v >= 0 && v <= 99);
    }),
  );
});

t.test('helpers', async (t) => {
  t.ok(isValidId('A-z_0.9'));
  t.notOk(isValidId(''));
  // Byte strings, as the decoder gives them: é is two bytes, so two `?`, and the cap counts bytes.
  t.equal(echo(`ab\x00${Buffer.from('é').toString('latin1')}`), '"ab???"');
  t.equal(echo('\u00ff'.repeat(40)), `"${'?'.repeat(32)}..."`);
  t.same(tokenize(' a \t b  '), ['a', 'b']);
  t.same(tokenize(' \t '), []);
});

t.test(
  'tokenize splits at runs of spaces and tabs only, as trim-then-split on [ \\t]+ would',
  async (t) => {
    const reference = (line: string): string[] => {
      const trimmed = line.replace(/^[ \t]+|[ \t]+$/g, '');
      return trimmed === '' ? [] : trimmed.split(/[ \t]+/);
    };
    // Separators, other whitespace that is data here (CR, VT, NBSP), and letters.
    const chars = fc.constantFrom(' ', '\t', '\r', '\v', '\u00a0', 'a', 'B', '7');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 24 }), (cs) => {
        const line = cs.join('');
        t.same(tokenize(line), reference(line), JSON.stringify(line));
      }),
    );
  },
);

t.test('the fast path for `VALUE n` parses every line as the general parse does', async (t) => {
  for (let n = 0; n <= 99; n++) {
    const line = `VALUE ${n}`;
    t.same(parseRequest(line), parseTokens(line), line);
    t.ok(Object.isFrozen(parseRequest(line)), 'a shared parse cannot be changed by a caller');
  }
  const near = [
    'VALUE 07',
    'VALUE 00',
    'VALUE 100',
    'VALUE -1',
    'VALUE 5 ',
    'VALUE  5',
    'VALUE\t5',
  ];
  for (const line of [...near, 'VALUE :', 'VALUE /', 'VALUE 9:', 'VALUE 1/', 'value 5', 'VALUEx5'])
    t.same(parseRequest(line), parseTokens(line), line);
  // Lines of 7 or 8 characters from `VALUE ` and digit-like characters, every one compared.
  const chars = fc.constantFrom('0', '1', '5', '9', '/', ':', ' ', '\t', '\u0663', 'V', 'x');
  fc.assert(
    fc.property(fc.array(chars, { minLength: 1, maxLength: 2 }), (cs) => {
      const line = `VALUE ${cs.join('')}`;
      t.same(parseRequest(line), parseTokens(line), JSON.stringify(line));
    }),
  );
});
