/**
 * Issue 4, item 2: torn writes. A reader polling the state file while thousands of commits run
 * (each followed by a checkpoint: the state file is rewritten only by checkpoints since issue 10)
 * never sees a partial file; temp files a crashed writer left are ignored at start and removed.
 */
import t from 'tap';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { parseState, serializeState } from '../src/store/state-file.js';
import { pathArgs, RawClient, startChild, within } from './fixtures/reliability.js';
import { startTestServer, tempDir } from './fixtures/server.js';

// Real processes on a shared 2-core machine: more than tap's 30 s default when it is loaded.
t.setTimeout(90_000);

/** Commits (state file writes) to watch, counted by the store itself. */
const COMMITS = 2_000;
const WRITERS = 8;
/** Unacknowledged VALUEs per writer, so a next commit is always waiting. */
const WINDOW = 4;
/** Ids already in the file, so a write takes long enough to be caught halfway if it could be. */
const PADDING_IDS = 300;

/**
 * Pause between reads. A reader spinning flat out contends with the writer for the folder and
 * slows commits threefold; a read every ~0.5 ms still lands inside thousands of writes.
 */
const READ_PAUSE_MS = 0.25;

/**
 * The reader, in its own thread so it polls while the server's writes are in flight in the libuv
 * pool. Plain JS (eval): JSON, a flat object of integers 0-99, all padding ids, the final "}\n".
 */
const READER = `
const { workerData, parentPort } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const { path, minIds, stop, pauseMs } = workerData;
const flag = new Int32Array(stop);
let reads = 0;
const partial = [];
const versions = new Set();
while (Atomics.load(flag, 0) === 0) {
  Atomics.wait(flag, 0, 0, pauseMs);
  const text = readFileSync(path, 'utf8');
  reads++;
  try {
    const data = JSON.parse(text);
    const entries = Object.entries(data);
    if (!text.endsWith('}\\n') || entries.length < minIds) throw new Error('short file');
    if (!entries.every(([, v]) => Number.isInteger(v) && v >= 0 && v <= 99)) throw new Error('bad value');
    versions.add(entries.length + ':' + entries.slice(minIds).map(([, v]) => v).join(','));
  } catch (err) {
    if (partial.length < 5) partial.push(err.message + ': ' + JSON.stringify(text.slice(-40)) + ' (' + text.length + ' bytes)');
  }
}
parentPort.postMessage({ reads, partial, versions: versions.size });
`;

t.test('a reader polling the state file never sees a partial file', async (t) => {
  const padding = new Map<string, number>();
  for (let i = 0; i < PADDING_IDS; i++) padding.set(`pad-${i}`, i % 100);
  const dir = tempDir(t);
  const statePath = join(dir, 'state.json');
  writeFileSync(statePath, serializeState(padding));
  // checkpointBytes 1: a checkpoint after every commit, as often as one can run.
  const { server, port } = await startTestServer(t, {
    statePath,
    storeCheckpoint: { checkpointBytes: 1 },
  });

  const stop = new SharedArrayBuffer(4);
  const worker = new Worker(READER, {
    eval: true,
    workerData: { path: statePath, minIds: PADDING_IDS, stop, pauseMs: READ_PAUSE_MS },
  });
  t.teardown(() => worker.terminate());
  const report = once(worker, 'message') as Promise<
    [{ reads: number; partial: string[]; versions: number }]
  >;

  const started = performance.now();
  const commitsBefore = server.monitor.commits;
  const mismatches: string[] = [];
  const writing = Promise.all(
    Array.from({ length: WRITERS }, async (_, i) => {
      const client = await RawClient.connect(port, t);
      await client.request(`HELLO torn-${i}`);
      let seq = 0;
      let acked = 0;
      await new Promise<void>((resolve) => {
        const pump = () => {
          let batch = '';
          for (; seq - acked < WINDOW; seq++) batch += `VALUE ${(seq + 1) % 100}\n`;
          client.send(batch);
        };
        client.onLine = (line) => {
          acked++;
          if (line !== `OK ${acked % 100}`) mismatches.push(`torn-${i}: ${line}`);
          if (server.monitor.commits - commitsBefore >= COMMITS) resolve();
          else pump();
        };
        pump();
      });
      client.socket.destroy();
    }),
  );
  await within(25_000, `${COMMITS} commits`, writing);
  const commits = server.monitor.commits - commitsBefore;
  Atomics.store(new Int32Array(stop), 0, 1);
  const [reads] = await report;
  const seconds = (performance.now() - started) / 1000;

  t.same(mismatches, [], 'every VALUE answered OK, in order');
  t.ok(commits >= COMMITS, `${commits} commits ran`);
  t.same(reads.partial, [], 'no read saw a partial or malformed file');
  t.ok(reads.reads > commits, `the reader polled ${reads.reads} times`);
  t.ok(reads.versions >= 20, `the reader saw ${reads.versions} different versions`);
  t.comment(
    `FIGURES torn: commits=${commits} in ${seconds.toFixed(1)} s, reads=${reads.reads}, ` +
      `versionsSeen=${reads.versions}, partial=${reads.partial.length}`,
  );
});

t.test('temp files left by a crash are ignored at start and removed', async (t) => {
  const dir = tempDir(t);
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  const statePath = join(stateDir, 'values.json');
  writeFileSync(statePath, '{\n  "keep": 7\n}\n');
  const stale = {
    // A finished but unrenamed write: newer-looking, valid, and still not the state.
    'values.json.tmp-424242-1': '{\n  "keep": 8,\n  "ghost": 9\n}\n',
    'values.json.tmp-424242-2': '{\n  "keep": 9,',
    'values.json.tmp-1-77': '',
    // The names writers use now: a random suffix (issue 11), still with the same prefix.
    'values.json.tmp-5f0c7e2a9b41d8e3a6c2f719': '{\n  "keep": 9\n}\n',
  };
  // Not ours: another file's temp and an operator's files must survive.
  const foreign = { 'other.json.tmp-1-1': '{}', 'notes.txt': 'hi', 'values.json.bak': '{}' };
  for (const [name, text] of Object.entries({ ...stale, ...foreign })) {
    writeFileSync(join(stateDir, name), text);
  }
  const server = await startChild(t, pathArgs(statePath, join(dir, 'messages.log')));

  t.same(
    readdirSync(stateDir).sort(),
    ['values.json', 'values.json.journal.1', ...Object.keys(foreign)].sort(),
    'stale temps removed before listening; other files untouched',
  );
  for (const [name, text] of Object.entries(foreign)) {
    t.equal(readFileSync(join(stateDir, name), 'utf8'), text, `${name} unchanged`);
  }
  const keep = await RawClient.connect(server.port, t);
  const ghost = await RawClient.connect(server.port, t);
  t.same(await keep.request('HELLO keep'), ['VALUE 7'], 'the state file is what loads');
  t.same(await ghost.request('HELLO ghost'), ['VALUE 0'], 'nothing is read from a temp file');
  t.same(await keep.request('VALUE 8'), ['OK 8']);
  t.equal((await server.kill('SIGTERM')).code, 0);
  t.same([...parseState(readFileSync(statePath, 'utf8'))], [['keep', 8]], 'exact after a stop');
});
