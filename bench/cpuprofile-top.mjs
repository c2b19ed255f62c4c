#!/usr/bin/env node
/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): where the time went, by area of Parity
 * (busy time only), by function (self time), by module (self time summed per file group), and
 * the inclusive time of Parity's own functions. With --share, the time spent under the functions
 * whose `name file:line` matches a regular expression (the sample counts once if any frame of its
 * stack matches), as a share of the time not idle: e.g. `--share 'monitor/sampler'` for the live
 * view's ticks. Garbage collection is not on the stack of whatever allocated, so it is shown
 * beside it.
 *
 *   node bench/cpuprofile-top.mjs PROFILE.cpuprofile [--top 25] [--share REGEXP]
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, share: { type: 'string' } },
});
if (positionals.length === 0) {
  process.stderr.write(
    'usage: node bench/cpuprofile-top.mjs PROFILE.cpuprofile [--top N] [--share REGEXP]\n',
  );
  process.exit(2);
}
const top = Number(values.top);
/** Parity's modules by area, for "busy time by area". */
const AREAS = /** @type {Array<[RegExp, string]>} */ ([
  [/\/dist\/(log|monitor)\//, 'message log records and counters'],
  [/\/dist\/protocol\//, 'parsing and formatting'],
  [/\/dist\/store\//, 'store and commit (journal, fs calls)'],
  [/\/dist\/server\/(connection|reply-queue|handlers)\./, 'connection, handlers, reply queue'],
  [/\/dist\//, 'the rest of Parity (accepting, startup)'],
]);

for (const file of positionals) {
  /** @type {{ nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }>, samples: number[], timeDeltas: number[], startTime: number, endTime: number }} */
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  /** @type {Map<number, number>} */
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** @type {Map<number, number>} self µs per node */
  const self = new Map();
  prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((s, x) => s + x, 0);

  const key = (/** @type {number} */ id) => {
    const f = /** @type {NonNullable<ReturnType<typeof byId.get>>} */ (byId.get(id)).callFrame;
    const url = f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/');
    return `${f.functionName || '(anonymous)'} ${url ? `${url}:${f.lineNumber + 1}` : ''}`.trim();
  };
  const group = (/** @type {number} */ id) => {
    const f = /** @type {NonNullable<ReturnType<typeof byId.get>>} */ (byId.get(id)).callFrame;
    const url = f.url;
    if (url === '') return f.functionName.startsWith('(') ? f.functionName : '(native/V8 builtins)';
    if (url.startsWith('node:'))
      return url
        .replace(/^node:internal\//, 'node:')
        .replace(/\/.*$/, '')
        .replace(/^node:(.*)$/, 'node:$1');
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (m) return `npm ${m[1]}`;
    const d = /\/dist\/(.*)$/.exec(url);
    if (d) return `parity ${d[1]}`;
    return url.replace(/^file:\/\//, '');
  };

  /** The area of the sample whose leaf is `id`, or null when idle. */
  const areaOf = (/** @type {number} */ id) => {
    const name = /** @type {NonNullable<ReturnType<typeof byId.get>>} */ (byId.get(id)).callFrame
      .functionName;
    if (name === '(idle)') return null;
    if (name === 'writeUtf8String') return 'socket write of a reply (the syscall)';
    if (name === '(garbage collector)') return 'garbage collection';
    if (name === '(program)') return '(program): libuv and syscalls outside JS';
    for (let n = /** @type {number | undefined} */ (id); n !== undefined; n = parent.get(n)) {
      const url = /** @type {NonNullable<ReturnType<typeof byId.get>>} */ (byId.get(n)).callFrame
        .url;
      const area = AREAS.find(([re]) => re.test(url));
      if (area) return area[1];
    }
    return 'Node internals (socket reads, streams, module loading)';
  };
  /** @type {Map<string, number>} */
  const fnSelf = new Map();
  /** @type {Map<string, number>} */
  const groupSelf = new Map();
  for (const [id, us] of self) {
    fnSelf.set(key(id), (fnSelf.get(key(id)) ?? 0) + us);
    groupSelf.set(group(id), (groupSelf.get(group(id)) ?? 0) + us);
  }
  // Inclusive time: each sample counts once for every distinct function on its stack.
  /** @type {Map<string, number>} */
  const incl = new Map();
  for (const [id, us] of self) {
    const seen = new Set();
    for (let n = /** @type {number | undefined} */ (id); n !== undefined; n = parent.get(n)) {
      const k = key(n);
      if (!seen.has(k)) {
        seen.add(k);
        incl.set(k, (incl.get(k) ?? 0) + us);
      }
    }
  }

  const pct = (/** @type {number} */ us) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
  const msOf = (/** @type {number} */ us) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  const idle =
    self.get(prof.nodes.find((n) => n.callFrame.functionName === '(idle)')?.id ?? -1) ?? 0;
  process.stdout.write(
    `\n${file}\n  ${(total / 1e6).toFixed(1)} s sampled, ${((1 - idle / total) * 100).toFixed(0)}% not idle\n`,
  );
  const print = (
    /** @type {string} */ title,
    /** @type {Map<string, number>} */ map,
    /** @type {(k: string) => boolean} */ filter = () => true,
  ) => {
    process.stdout.write(`\n  ${title}\n`);
    for (const [k, us] of [...map]
      .filter(([k]) => filter(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)) {
      process.stdout.write(`  ${pct(us)} ${msOf(us)}  ${k}\n`);
    }
  };
  // By area: each sample goes to the nearest Parity module on its stack (so a native call such as
  // Buffer#write counts where Parity made it), except the reply's socket write and V8's own entries.
  /** @type {Map<string, number>} */
  const areaSelf = new Map();
  let busy = 0;
  for (const [id, us] of self) {
    const area = areaOf(id);
    if (area === null) continue;
    busy += us;
    areaSelf.set(area, (areaSelf.get(area) ?? 0) + us);
  }
  process.stdout.write('\n  busy time by area\n');
  for (const [area, us] of [...areaSelf].sort((a, b) => b[1] - a[1]))
    process.stdout.write(
      `  ${((us / busy) * 100).toFixed(1).padStart(5)}% of busy ${msOf(us)}  ${area}\n`,
    );
  print('self time by module', groupSelf);
  print('self time by function', fnSelf);
  print("inclusive time of Parity's functions", incl, (k) => k.includes('dist/'));
  print('inclusive time of pino', incl, (k) => k.includes('node_modules/pino'));
  if (values.share !== undefined) share(new RegExp(values.share));

  /**
   * The time under `pattern`, as a share of the time not idle: over the whole profile, and over
   * the span from its first sample to its last (for the live view: while viewers were attached).
   */
  function share(/** @type {RegExp} */ pattern) {
    /** @type {Map<number, boolean>} */
    const matching = new Map();
    const isUnder = (/** @type {number} */ id) => {
      let hit = matching.get(id);
      if (hit === undefined) {
        hit = false;
        for (let n = /** @type {number | undefined} */ (id); n !== undefined; n = parent.get(n)) {
          if (pattern.test(key(n))) hit = true;
        }
        matching.set(id, hit);
      }
      return hit;
    };
    const first = prof.samples.findIndex(isUnder);
    const last = prof.samples.findLastIndex(isUnder);
    const tally = (/** @type {number} */ from, /** @type {number} */ to) => {
      const t = { all: 0, idle: 0, under: 0, gc: 0 };
      for (let i = from; i <= to; i++) {
        const id = /** @type {number} */ (prof.samples[i]);
        const us = prof.timeDeltas[i] ?? 0;
        const name = /** @type {NonNullable<ReturnType<typeof byId.get>>} */ (byId.get(id))
          .callFrame.functionName;
        t.all += us;
        if (name === '(idle)') t.idle += us;
        else if (name === '(garbage collector)') t.gc += us;
        else if (isUnder(id)) t.under += us;
      }
      const busy = t.all - t.idle;
      const of = (/** @type {number} */ us) => `${((us / busy) * 100).toFixed(1)}%`;
      return (
        `${msOf(t.under).trim()} = ${of(t.under)} of ${msOf(busy).trim()} not idle ` +
        `(garbage collection, all causes: ${of(t.gc)})`
      );
    };
    process.stdout.write(`\n  under /${pattern.source}/\n`);
    if (first === -1) return void process.stdout.write('  no sample\n');
    process.stdout.write(`  whole profile: ${tally(0, prof.samples.length - 1)}\n`);
    const span = prof.timeDeltas.slice(first + 1, last + 1).reduce((a, b) => a + b, 0);
    process.stdout.write(`  its ${(span / 1e6).toFixed(1)} s span: ${tally(first, last)}\n`);
  }
}
