#!/usr/bin/env node
/**
 * Splits a server's CPU, sampled by `perf record -e cpu-clock -g`, into what it was spent on:
 * network syscalls, fdatasync, file writes, thread wake-ups, JavaScript, Node and V8. Each
 * sample counts once, in the first area its stack matches (the order of AREAS), so the rows add
 * up; a sample with no kernel area goes by the module of its innermost frame. Prints cores, the
 * samples divided by the recording's seconds times its frequency.
 *
 *   perf record -e cpu-clock -F 1999 -g -p PID -o server.perf -- sleep 5
 *   perf script -i server.perf | node bench/perf-split.mjs --seconds 5 --hz 1999
 */
import { createInterface } from 'node:readline';
import process from 'node:process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, hz: { type: 'string' } },
});
if (values.seconds === undefined || values.hz === undefined) {
  process.stderr.write(
    'usage: perf script -i FILE | node bench/perf-split.mjs --seconds S --hz F\n',
  );
  process.exit(2);
}
const samplesPerCore = Number(values.seconds) * Number(values.hz);

/** Kernel areas, by a kernel function anywhere on the stack; the first that matches wins. */
const AREAS = /** @type {Array<[RegExp, string]>} */ ([
  [/tcp_sendmsg/, 'kernel: TCP sends (on loopback, with the delivery to the peer)'],
  [/__x64_sys_fdatasync|ext4_sync_file/, 'kernel: fdatasync'],
  [/ksys_write|vfs_write/, 'kernel: other writes (files)'],
  [/ksys_read|vfs_read|epoll/, 'kernel: reads and epoll'],
  [/futex|schedule/, 'kernel: thread wake-ups and switches'],
]);
const KERNEL_REST = 'kernel: the rest (page faults, timers, memory)';
const JAVASCRIPT = 'user: JavaScript';
const NATIVE = 'user: Node, V8 and libc';

/** @type {Map<string, number>} */
const counts = new Map();
let total = 0;
/** @type {string[]} */
let frames = [];

function count() {
  if (frames.length === 0) return;
  // Only kernel frames name an area: libc's futex wrapper, say, is user time.
  const kernel = frames.filter((frame) => frame.includes('[kernel.kallsyms]')).join('\n');
  const leaf = frames[0];
  let area = AREAS.find(([pattern]) => pattern.test(kernel))?.[1];
  if (area === undefined) {
    if (leaf.includes('[kernel.kallsyms]')) area = KERNEL_REST;
    else if (/\[JIT\]|perf-\d+\.map/.test(leaf)) area = JAVASCRIPT;
    else area = NATIVE;
  }
  counts.set(area, (counts.get(area) ?? 0) + 1);
  total++;
  frames = [];
}

// `perf script` prints a header line per sample, then one indented line per frame, innermost
// first, then a blank line.
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') count();
  else if (/^\s/.test(line)) frames.push(line);
}
count();

const order = [...AREAS.map(([, name]) => name), KERNEL_REST, JAVASCRIPT, NATIVE];
for (const name of order) {
  const n = counts.get(name) ?? 0;
  const share = total === 0 ? 0 : (100 * n) / total;
  process.stdout.write(
    `${(n / samplesPerCore).toFixed(3)} cores  ${share.toFixed(1).padStart(5)}%  ${name}\n`,
  );
}
process.stdout.write(`${(total / samplesPerCore).toFixed(3)} cores  total, ${total} samples\n`);
