/** realFilePath (src/fs/real-path.ts): the lookup, one name at a time, as the kernel's. */
import t from 'tap';
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { realFilePath } from '../src/fs/real-path.js';
import { tempDir } from './fixtures/server.js';

t.test('an existing file: what realpath says, and every entry on the way seen', async (t) => {
  const dir = realpathSync(tempDir(t));
  mkdirSync(join(dir, 'a', 'b'), { recursive: true });
  writeFileSync(join(dir, 'a', 'b', 'f'), '');
  symlinkSync('a/b', join(dir, 'l'));
  const seen: string[] = [];
  const real = await realFilePath(join(dir, 'l', 'f'), (path) => seen.push(path));
  t.equal(real, realpathSync(join(dir, 'l', 'f')));
  t.same(seen.slice(-4), [
    join(dir, 'l'),
    join(dir, 'a'),
    join(dir, 'a', 'b'),
    join(dir, 'a', 'b', 'f'),
  ]);
});

t.test('missing names are appended; a dangling link names its target', async (t) => {
  const dir = realpathSync(tempDir(t));
  mkdirSync(join(dir, 'real'));
  symlinkSync(join(dir, 'real', 'values.json'), join(dir, 'dangling'));
  t.equal(await realFilePath(join(dir, 'dangling')), join(dir, 'real', 'values.json'));
  t.equal(await realFilePath(join(dir, 'no', 'such', 'f')), join(dir, 'no', 'such', 'f'));
  symlinkSync('real', join(dir, 'r'));
  t.equal(await realFilePath(join(dir, 'r', 'missing', '..', 'f')), join(dir, 'real', 'f'));
});

t.test('`..` after a symlink goes to the parent of its target, not of the link', async (t) => {
  const dir = realpathSync(tempDir(t));
  mkdirSync(join(dir, 'x', 'deep'), { recursive: true });
  mkdirSync(join(dir, 'y'));
  symlinkSync(join(dir, 'x', 'deep'), join(dir, 'y', 'link'));
  const given = `${join(dir, 'y', 'link')}/../f`;
  t.equal(await realFilePath(given), join(dir, 'x', 'f'));
});

t.test('a loop of symlinks fails as the kernel does', async (t) => {
  const dir = realpathSync(tempDir(t));
  symlinkSync(join(dir, 'b'), join(dir, 'a'));
  symlinkSync(join(dir, 'a'), join(dir, 'b'));
  await t.rejects(realFilePath(join(dir, 'a', 'f')), { code: 'ELOOP' });
});
