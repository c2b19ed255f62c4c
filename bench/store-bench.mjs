#!/usr/bin/env node
/**
 * State-store measurements, run in a child process of run.mjs so a million-entry map never sits
 * in the coordinator. Uses the built Store (dist/store/store.js) directly: no server, no log.
 *
 *   node bench/store-bench.mjs commit --root . --dir /tmp/x --ids 1000,10000 --commits 10
 *     → JSON [{ ids, bytes, serializeMs, openMs, commitMs: { median, min, max } }, …]
 *   node bench/store-bench.mjs write --root . --path /tmp/x/state.json --ids 1000000 [--id-length 64]
 *     → JSON { ids, bytes }  (a state file in Parity's own format, written as a stream: 10M ids
 *       of 64 characters is ~800 MB, which no Map in this process should hold)
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    root: { type: 'string', default: '.' },
    dir: { type: 'string' },
    path: { type: 'string' },
    ids: { type: 'string', default: '1000' },
    commits: { type: 'string', default: '10' },
    'id-length': { type: 'string', default: '12' },
  },
});
const dist = (/** @type {string} */ p) => pathToFileURL(join(values.root, 'dist', p)).href;
const { Store } = await import(dist('store/store.js'));
const { serializeState } = await import(dist('store/state-file.js'));

/** Ids shaped like a client's: a word and a number, 12 characters. */
function sampleValues(/** @type {number} */ n) {
  const map = new Map();
  for (let i = 0; i < n; i++) map.set(`user-${String(i).padStart(7, '0')}`, i % 100);
  return map;
}

const median = (/** @type {number[]} */ xs) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (/** @type {number} */ x) => Math.round(x * 100) / 100;

const counts = values.ids.split(',').map(Number);
if (positionals[0] === 'write') {
  const path = /** @type {string} */ (values.path);
  const n = counts[0];
  const width = Math.max(12, Number(values['id-length'])) - 5;
  const file = openSync(path, 'w', 0o600);
  try {
    let text = n === 0 ? '{}\n' : '{\n';
    for (let i = 0; i < n; i++) {
      const v = i % 100;
      text += `  "user-${String(i).padStart(width, '0')}": ${v < 10 ? ' ' : ''}${v}${i < n - 1 ? ',' : ''}\n`;
      if (text.length > 1 << 20) {
        writeSync(file, text);
        text = '';
      }
    }
    writeSync(file, n === 0 ? text : `${text}}\n`);
  } finally {
    closeSync(file);
  }
  process.stdout.write(`${JSON.stringify({ ids: counts[0], bytes: statSync(path).size })}\n`);
} else {
  const out = [];
  for (const ids of counts) {
    const dir = join(/** @type {string} */ (values.dir), `store-${ids}`);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'state.json');
    const map = sampleValues(ids);
    const serialize = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      serializeState(map);
      serialize.push(performance.now() - t);
    }
    writeFileSync(path, serializeState(map));
    let t = performance.now();
    const store = await Store.open(path);
    const openMs = performance.now() - t;
    const commits = [];
    const n = ids >= 1_000_000 ? Math.min(5, Number(values.commits)) : Number(values.commits);
    for (let i = 0; i < n; i++) {
      // One changed value, then wait until it is durable: one journal record appended and
      // fdatasynced. The whole file is written only by checkpoints (closeMs below).
      t = performance.now();
      await store.set('user-0000000', (i + 1) % 100);
      commits.push(performance.now() - t);
    }
    // The worst case, as under many active clients: every id changed since the last commit, so
    // no cached part of the file can be reused.
    const all = [];
    for (let round = 0; round < (ids >= 1_000_000 ? 1 : 3); round++) {
      /** @type {Promise<void> | undefined} */
      let last;
      for (const id of map.keys()) last = store.set(id, (map.get(id) + round + 1) % 100);
      t = performance.now();
      await last;
      all.push(performance.now() - t);
    }
    // The last checkpoint (the whole table to the state file), and no journal left behind: the
    // folder is removed next, and a background checkpoint still writing would refill it.
    t = performance.now();
    await store.close();
    const closeMs = performance.now() - t;
    out.push({
      ids,
      allChangedMs: round(median(all)),
      closeMs: round(closeMs),
      bytes: statSync(path).size,
      serializeMs: round(median(serialize)),
      openMs: round(openMs),
      commitMs: {
        median: round(median(commits)),
        min: round(Math.min(...commits)),
        max: round(Math.max(...commits)),
      },
    });
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
