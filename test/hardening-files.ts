/**
 * Issue 11, hardening of the files the server writes: temp names nobody can plant, private modes,
 * StrictModes on the folders, one lock and one file through a symlinked state path.
 */
import t from 'tap';
import {
  chmodSync,
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { openExclusive } from '../src/fs/exclusive-open.js';
import { probeWritable, writeFileAtomic } from '../src/store/atomic-write.js';
import { lockStateFile } from '../src/store/state-lock.js';
import { Store } from '../src/store/store.js';
import { pathArgs, RawClient, startChild } from './fixtures/reliability.js';
import { tempDir } from './fixtures/server.js';

// Real processes on a shared 2-core machine: more than tap's 30 s default when it is loaded.
t.setTimeout(90_000);

const mode = (path: string) => statSync(path).mode & 0o7777;
const VICTIM_TEXT = 'root:secret\n';

/** A 0600 file outside the state folder that a planted symlink points at. */
function victim(dir: string): string {
  const path = join(dir, 'victim');
  writeFileSync(path, VICTIM_TEXT, { mode: 0o600 });
  return path;
}

t.test('symlinks planted at temp names never redirect a write', async (t) => {
  const dir = tempDir(t);
  const target = victim(dir);
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  const path = join(stateDir, 'values.json');
  // Every name the old writer could pick next (pid and counter), and its probe name.
  for (let n = 1; n <= 2000; n++) symlinkSync(target, `${path}.tmp-${process.pid}-${n}`);
  symlinkSync(target, `${path}.tmp-${process.pid}-probe`);
  await writeFileAtomic(path, '{\n  "a":  1\n}\n');
  await probeWritable(path);
  t.equal(readFileSync(target, 'utf8'), VICTIM_TEXT, 'the victim is untouched');
  t.equal(mode(target), 0o600);
  t.equal(readFileSync(path, 'utf8'), '{\n  "a":  1\n}\n', 'the state file was written');
  t.ok(lstatSync(path).isFile(), 'as a file of its own');
});

t.test('a running store ignores symlinks planted after it opened', async (t) => {
  const dir = tempDir(t);
  const target = victim(dir);
  const path = join(dir, 'state', 'values.json');
  const store = await Store.open(path);
  for (let n = 1; n <= 500; n++) symlinkSync(target, `${path}.tmp-${process.pid}-${n}`);
  for (let i = 0; i < 20; i++) await store.set('alice', i);
  await store.close(); // the checkpoint: the state file is rewritten only then
  t.equal(readFileSync(target, 'utf8'), VICTIM_TEXT, 'the victim is untouched');
  t.match(readFileSync(path, 'utf8'), /"alice": 19/);
});

t.test('the exclusive open refuses a symlink or an existing file at the name', async (t) => {
  const dir = tempDir(t);
  const target = victim(dir);
  symlinkSync(target, join(dir, 'link'));
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
  await t.rejects(openExclusive(join(dir, 'link')), { code: 'EEXIST' });
  await t.rejects(openExclusive(join(dir, 'dangling')), { code: 'EEXIST' });
  await t.rejects(openExclusive(target), { code: 'EEXIST' });
  t.equal(readFileSync(target, 'utf8'), VICTIM_TEXT);
  t.same(readdirSync(dir).sort(), ['dangling', 'link', 'victim'], 'nothing was created');
  const file = await openExclusive(join(dir, 'new'));
  await file.close();
  t.equal(mode(join(dir, 'new')), 0o600);
});

t.test('the state file is 0600 and the folders the store creates are 0700', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'a', 'b', 'values.json');
  const store = await Store.open(path);
  t.equal(mode(path), 0o600, 'a new state file');
  t.equal(mode(join(dir, 'a')), 0o700);
  t.equal(mode(join(dir, 'a', 'b')), 0o700);
  t.equal(mode(`${path}.journal.1`), 0o600, 'its journal');
  // An existing world-readable file becomes private with the next checkpoint (the rename).
  chmodSync(path, 0o644);
  await store.set('alice', 1);
  await store.close();
  t.equal(mode(path), 0o600, 'after a checkpoint');
  const again = await Store.open(path);
  await again.set('bob', 2);
  await again.close();
  t.equal(mode(path), 0o600);
});

t.test('a symlinked state file: one lock, written through, the link kept', async (t) => {
  const dir = tempDir(t);
  const real = join(dir, 'real', 'values.json');
  const link = join(dir, 'link', 'values.json');
  mkdirSync(join(dir, 'real'));
  mkdirSync(join(dir, 'link'));
  writeFileSync(real, '{\n  "alice":  1\n}\n');
  symlinkSync(real, link);

  const lock = await lockStateFile(real);
  t.teardown(() => lock.release());
  await t.rejects(lockStateFile(link), { message: /in use by another Parity server/ });
  const relative = join(dir, 'link', 'relative.json');
  symlinkSync('../real/values.json', relative);
  await t.rejects(lockStateFile(relative), /in use/, 'a relative symlink too');
  await lock.release();

  writeFileSync(`${link}.tmp-1-1`, '{'); // left beside the link by an earlier version
  writeFileSync(`${real}.tmp-1-1`, '{');
  const store = await Store.open(link);
  t.equal(store.path, link, 'path stays as given');
  t.equal(store.get('alice'), 1);
  await store.set('alice', 2);
  await store.set('bob', 3);
  await store.close();
  t.ok(lstatSync(link).isSymbolicLink(), 'the link is still a symlink');
  t.equal(readlinkSync(link), real, 'pointing where it did');
  t.match(readFileSync(real, 'utf8'), /"alice": {2}2,\n {2}"bob": {2}3/, 'the target is updated');
  t.same(readdirSync(join(dir, 'link')).sort(), ['relative.json', 'values.json']);
  t.same(readdirSync(join(dir, 'real')), ['values.json'], 'no temp files left');
});

t.test('a dangling symlink: the file is created at its target, under one lock', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'real'));
  const real = join(dir, 'real', 'values.json');
  const link = join(dir, 'values.json');
  symlinkSync(real, link);
  const lock = await lockStateFile(link);
  t.teardown(() => lock.release());
  await t.rejects(lockStateFile(real), /in use/);
  const store = await Store.open(link);
  await store.set('alice', 4);
  await store.close();
  t.ok(lstatSync(link).isSymbolicLink());
  t.match(readFileSync(real, 'utf8'), /"alice": {2}4/);
  t.equal(mode(real), 0o600);
});

/**
 * Old-space cap for the server below: far less than the state file, so it cannot be one string.
 * 24 MiB: the server's own baseline (prom-client's registry, the monitor) is about 15 MiB.
 */
const HEAP_CAP_MIB = 24;
const FILE_MIB = 64;

t.test('a state file several times the heap loads: it is never one string', async (t) => {
  const dir = tempDir(t);
  const statePath = join(dir, 'values.json');
  // Our layout with one id repeated (the last value wins), then blank space: big on disk, small
  // in memory once parsed, so only reading the file whole could exhaust the heap.
  const repeat = Buffer.from('  "alice":  1,\n'.repeat(64 * 1024));
  const file = openSync(statePath, 'w');
  try {
    writeSync(file, '{\n');
    for (let i = 0; i < (FILE_MIB * 1024 * 1024) / 2 / repeat.length; i++) writeSync(file, repeat);
    writeSync(file, '  "alice":  7,\n  "bob": 42\n}\n');
    const blank = Buffer.alloc(1024 * 1024, ' ');
    for (let i = 0; i < FILE_MIB / 2; i++) writeSync(file, blank);
  } finally {
    closeSync(file);
  }
  t.ok(statSync(statePath).size > FILE_MIB * 1024 * 1024, `a ${FILE_MIB} MiB file`);
  const args = [...pathArgs(statePath, join(dir, 'messages.log')), '--no-http'];
  const server = await startChild(t, args, [`--max-old-space-size=${HEAP_CAP_MIB}`]);
  const client = await RawClient.connect(server.port, t);
  t.same(await client.request('HELLO alice'), ['VALUE 7'], 'the last value of a repeated id');
  const bob = await RawClient.connect(server.port, t);
  t.same(await bob.request('HELLO bob'), ['VALUE 42']);
  t.equal((await server.kill('SIGTERM')).code, 0);
});
