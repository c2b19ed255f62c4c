/**
 * StrictModes (src/fs/private-folder.ts): who could change a folder or a symlink on the way to a
 * file the server writes, and the folders it makes. Ownership cases need root (CI runs as root).
 */
import t from 'tap';
import {
  promises as fsp,
  chmodSync,
  chownSync,
  lchownSync,
  mkdirSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { checkPrivatePath, makePrivateFolder } from '../src/fs/private-folder.js';
import { tempDir } from './fixtures/server.js';

const mode = (path: string) => statSync(path).mode & 0o7777;
const asRoot = {
  skip: process.getuid?.() === 0 ? false : 'needs root to give a file to another user',
};
const NOBODY = 65534;

t.test('makePrivateFolder: mkdir -p with 0700, each new name synced in its parent', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const synced: string[] = [];
  const fs = {
    mkdir: fsp.mkdir,
    open: ((path: string, flags: string) => {
      synced.push(path);
      return fsp.open(path, flags);
    }) as typeof fsp.open,
  };
  await makePrivateFolder(join(dir, 'x', 'y'), fs);
  t.equal(mode(join(dir, 'x')), 0o700);
  t.equal(mode(join(dir, 'x', 'y')), 0o700);
  t.equal(mode(dir), 0o755, 'an existing folder keeps its mode');
  t.same(synced.sort(), [dir, join(dir, 'x')], 'the parent of each folder made, and no other');
  synced.length = 0;
  await makePrivateFolder(join(dir, 'x', 'y'), fs); // again: no error, nothing to sync
  t.same(synced, []);
});

t.test('the folder holding the file: nobody else may write to it, sticky or not', async (t) => {
  const folder = join(tempDir(t), 'state');
  mkdirSync(folder, { mode: 0o700 });
  const file = join(folder, 'values.json');
  await checkPrivatePath(file);
  await checkPrivatePath(join(folder, 'not-yet', 'created', 'values.json'));

  chmodSync(folder, 0o777);
  await t.rejects(checkPrivatePath(file), {
    message: new RegExp(`folder ${folder} \\(mode 0777\\) is writable by other users.*chmod go-w`),
  });
  chmodSync(folder, 0o770);
  await t.rejects(checkPrivatePath(file), { message: /mode 0770.*chmod go-w/ });
  // Sticky stops others removing our names, not adding theirs: a journal generation or a log
  // planted before the server creates it.
  chmodSync(folder, 0o1777);
  await t.rejects(checkPrivatePath(file), {
    message: new RegExp(`${folder} \\(mode 1777\\) is shared.*such as ${folder}/parity/`),
  });
  await t.rejects(
    checkPrivatePath(file),
    { message: /^(?!.*chmod)/s },
    'no chmod of a shared folder',
  );
  chmodSync(folder, 0o755);
  await checkPrivatePath(file);
});

t.test('a folder above: writable by others only if sticky, as /tmp', async (t) => {
  const above = join(tempDir(t), 'above');
  const inner = join(above, 'inner');
  mkdirSync(inner, { recursive: true, mode: 0o700 });
  const file = join(inner, 'values.json');
  chmodSync(above, 0o757);
  await t.rejects(checkPrivatePath(file), {
    message: new RegExp(`folder above ${inner}, ${above} \\(mode 0757\\).*chmod \\+t`),
  });
  await t.rejects(checkPrivatePath(join(inner, 'missing', 'f')), { message: /mode 0757/ });
  chmodSync(above, 0o1777);
  await checkPrivatePath(file);
});

t.test('folders reached through a symlink are checked on the route taken', async (t) => {
  const dir = tempDir(t);
  const open = join(dir, 'open');
  mkdirSync(join(open, 'real'), { recursive: true, mode: 0o700 });
  mkdirSync(join(dir, 'mine'), { mode: 0o700 });
  symlinkSync(join(open, 'real'), join(dir, 'mine', 'link'));
  const file = join(dir, 'mine', 'link', 'values.json');
  await checkPrivatePath(file);
  chmodSync(open, 0o777); // the target's parent: the given path never names it
  await t.rejects(checkPrivatePath(file), { message: new RegExp(`${open} \\(mode 0777\\)`) });
  chmodSync(open, 0o700);
  chmodSync(join(open, 'real'), 0o1777); // the real holder, as strict as any
  await t.rejects(checkPrivatePath(file), { message: /mode 1777/ });
});

t.test('another user owns a folder on the way: refused', asRoot, async (t) => {
  const folder = join(tempDir(t), 'state');
  mkdirSync(folder, { mode: 0o700 });
  chownSync(folder, NOBODY, NOBODY);
  await t.rejects(checkPrivatePath(join(folder, 'values.json')), {
    message: /belongs to uid 65534.*chown/,
  });
});

t.test('another user owns a symlink on the way: refused, wherever it points', asRoot, async (t) => {
  const dir = tempDir(t);
  const shared = join(dir, 'shared');
  mkdirSync(shared, { mode: 0o1777 });
  chmodSync(shared, 0o1777);
  const safe = join(dir, 'safe');
  mkdirSync(safe, { mode: 0o700 });
  const planted = join(shared, 'state');
  symlinkSync(safe, planted); // a folder link, as `--data-dir shared` would pass through
  lchownSync(planted, NOBODY, NOBODY);
  await t.rejects(checkPrivatePath(join(planted, 'values.json')), {
    message: new RegExp(`unsafe symlink: ${planted}, on the way to .* belongs to uid 65534`),
  });
  const fileLink = join(safe, 'values.json');
  symlinkSync(join(safe, 'elsewhere.json'), fileLink); // the file itself a link
  lchownSync(fileLink, NOBODY, NOBODY);
  await t.rejects(checkPrivatePath(fileLink), { message: /unsafe symlink/ });
  lchownSync(fileLink, 0, 0);
  await checkPrivatePath(fileLink); // root's or the server's own link is followed
  t.equal(dirname(fileLink), safe);
});
