import t from 'tap';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { passwd } from '../src/cli/passwd.js';
import {
  formatEntry,
  hashPassword,
  loadUsers,
  parseUsers,
  setUser,
  usersFileModeProblem,
  verifyPassword,
  UsersFileError,
} from '../src/server/users-file.js';
import { tempDir } from './fixtures/server.js';

// Cheap parameters: the file format carries them, so tests need not pay 50 ms per hash.
const FAST = { N: 1024, r: 8, p: 1 };

t.test('a hash line round-trips and verifies only its own password', async (t) => {
  const entry = await hashPassword('s3cret', FAST);
  const line = formatEntry('alice', entry);
  t.match(line, /^alice:scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  const users = parseUsers(`# comment\n\n${line}\r\n`);
  const back = users.get('alice')!;
  t.same(back.params, FAST);
  t.ok(await verifyPassword(back, 's3cret'));
  t.notOk(await verifyPassword(back, 's3cret '));
  t.notOk(await verifyPassword(back, 'S3cret'));
  const again = await hashPassword('s3cret', FAST);
  t.not(formatEntry('alice', again), line, 'a fresh salt each time');
});

t.test('a malformed users file is refused with its line number', async (t) => {
  const good = formatEntry('a', await hashPassword('x', FAST));
  const bad = [
    ['alice:plain', /line 1: expected/],
    ['a/b:scrypt$1024$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAA', /invalid id/],
    ['a:scrypt$1000$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAA', /unsupported scrypt/],
    ['a:scrypt$2097152$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAA', /unsupported scrypt/],
    ['a:scrypt$1024$8$1$AAAA$AAAA', /hash too short/],
    [`${good}\n${good}`, /line 2: a appears twice/],
  ] as const;
  for (const [text, re] of bad) t.throws(() => parseUsers(text), { message: re }, text);
  t.type(
    (() => {
      try {
        parseUsers('x');
      } catch (err) {
        return err;
      }
    })(),
    UsersFileError,
  );
});

t.test('setUser creates the file 0600 and replaces only that id', async (t) => {
  const path = join(tempDir(t), 'users');
  await setUser(path, 'alice', await hashPassword('one', FAST));
  t.equal(statSync(path).mode & 0o777, 0o600);
  await setUser(path, 'bob', await hashPassword('two', FAST));
  await setUser(path, 'alice', await hashPassword('three', FAST));
  const users = await loadUsers(path);
  t.same([...users.keys()], ['bob', 'alice']);
  t.ok(await verifyPassword(users.get('alice')!, 'three'));
  t.ok(await verifyPassword(users.get('bob')!, 'two'));
  t.equal(readFileSync(path, 'utf8').split('\n').length, 3, 'two lines and a final LF');
});

t.test('a users file others can write is refused, as sshd StrictModes does', async (t) => {
  t.equal(usersFileModeProblem(0o100600), null);
  t.equal(usersFileModeProblem(0o100644), null, 'readable is allowed: the hashes are salted');
  t.match(usersFileModeProblem(0o100666), /writable by group or others/);
  const path = join(tempDir(t), 'users');
  writeFileSync(path, '');
  chmodSync(path, 0o620);
  await t.rejects(loadUsers(path), /chmod 600/);
});

function io(input: string) {
  let err = '';
  return {
    stdin: Readable.from([input]),
    stderr: new Writable({ write: (c: Buffer, _e, cb) => ((err += String(c)), cb()) }),
    err: () => err,
  };
}

t.test('passwd reads the password from stdin, never from argv', async (t) => {
  const path = join(tempDir(t), 'users');
  const ok = io('pa$$word\nignored second line\n');
  t.equal(await passwd([path, 'alice'], ok), 0);
  t.match(ok.err(), /set alice/);
  t.ok(await verifyPassword((await loadUsers(path)).get('alice')!, 'pa$$word'));
  t.notMatch(readFileSync(path, 'utf8'), /pa\$\$word/, 'only the hash is stored');

  const spaced = io('two words\n');
  t.equal(await passwd([path, 'bob'], spaced), 2);
  t.match(spaced.err(), /no spaces/);
  t.equal(await passwd([path, 'a/b'], io('x\n')), 2, 'invalid id');
  t.equal(await passwd([path], io('x\n')), 2, 'usage');
  t.equal(await passwd([path, 'bob', 'extra'], io('x\n')), 2, 'no password argument');
  t.equal(await passwd([path, 'bob'], io('')), 2, 'empty password');
  t.equal(await passwd([join(path, 'nope', 'users'), 'bob'], io('x\n')), 1, 'unwritable');
});
