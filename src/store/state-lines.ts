/**
 * The state file's own layout, one entry per line exactly as StateTable.serialize writes it:
 *
 *     {
 *       "alice":  7,
 *       "bob": 42
 *     }
 *
 * Pure: finds, in the file's bytes as read (not decoded: an accepted line is ASCII, since ids are
 * [A-Za-z0-9_.-]{1,64}), the run of such entry lines a loader can copy into the table as they are.
 */
import { randomBytes } from 'node:crypto';

/** Longest id (protocol.md). */
const MAX_ID = 64;
const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const NEWLINE = 0x0a;
const ZERO = 0x30;
const ONE = 0x31;
const NINE = 0x39;

/** FNV-1a's own offset basis: a test passes it as the seed to reproduce known collisions. */
export const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * This process's seed, the offset basis XOR 32 random bits. Ids are chosen by peers: with FNV-1a's
 * fixed basis a peer can build ids that all share one hash (a review chained 4-character collision
 * pairs into 65,536 such 64-character ids), and the table's probes then go quadratic: a start
 * took 56 s instead of 1.1 s, and lookups stalled other clients for 1.8 s. Hashes live only in
 * memory, never in a file, so each process may pick its own, as V8 does for its strings.
 */
export const HASH_SEED = (FNV_OFFSET ^ randomBytes(4).readUInt32LE(0)) >>> 0;

/** FNV-1a from `seed` over the id's characters (ids are ASCII: also over its bytes). */
export function hashId(id: string, seed: number = HASH_SEED): number {
  let h = seed;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

/** 1 for the characters of an id, [A-Za-z0-9_.-]; one load per character, not six compares. */
const ID_CHAR = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-')
  ID_CHAR[c.charCodeAt(0)] = 1;

/** [A-Za-z0-9_.-]; false past the end of the bytes (undefined). */
function isIdChar(c: number): boolean {
  return ID_CHAR[c] === 1;
}

const isDigit = (c: number) => c >= ZERO && c <= NINE;

/** Most lines in one run (its arrays are allocated once). */
export const MAX_RUN_LINES = 512;

/**
 * Whether the id of the line being scanned is new (not in the table, nor earlier in this run);
 * `n` is the number the line gets in the run if it is.
 */
export type IsNewId = (idStart: number, idLength: number, hash: number, n: number) => boolean;

/** What scanEntries found: per line, where it starts, its id's hash and length, its value field. */
export class EntryRun {
  lines = 0;
  /** Just after the last line taken (a line start), or where the scan began if none was. */
  at = 0;
  /** Whether the last line taken ended in a comma (more entries follow it). */
  comma = false;
  readonly lineStart = new Float64Array(MAX_RUN_LINES);
  readonly value = new Float64Array(MAX_RUN_LINES);
  readonly hash = new Uint32Array(MAX_RUN_LINES);
  readonly idLength = new Uint8Array(MAX_RUN_LINES);
}

/**
 * Reads whole lines of `bytes` from `from` (a line start) up to `end` (just after a newline) while
 * each is an entry exactly in our layout: `  "<id>": ` then the two-character value field
 * (` 7` or `42`), then `,` or nothing, then the newline, for an id `isNew` says is new (a repeated
 * id is set the general way, in its place). Stops at the first other line, and after
 * an entry with no comma (the last one), and after MAX_RUN_LINES. Lines it stops at are not wrong,
 * only not this fast path's: the caller reads them the general way. A byte past the end reads as
 * undefined, which no comparison here accepts.
 */
export function scanEntries(
  bytes: Uint8Array,
  from: number,
  end: number,
  run: EntryRun,
  isNew: IsNewId,
  seed: number = HASH_SEED,
): EntryRun {
  run.lines = 0;
  run.at = from;
  run.comma = false;
  let i = from;
  while (i < end && run.lines < MAX_RUN_LINES) {
    if (bytes[i] !== SPACE || bytes[i + 1] !== SPACE || bytes[i + 2] !== QUOTE) break;
    const idStart = i + 3;
    let j = idStart;
    let h = seed;
    for (let c = bytes[j]!; isIdChar(c) && j - idStart < MAX_ID; c = bytes[++j]!)
      h = Math.imul(h ^ c, FNV_PRIME);
    const idLength = j - idStart;
    if (idLength === 0 || bytes[j] !== QUOTE) break;
    if (bytes[j + 1] !== COLON || bytes[j + 2] !== SPACE) break;
    const v = j + 3;
    const tens = bytes[v]!;
    if (!((tens === SPACE || (tens >= ONE && tens <= NINE)) && isDigit(bytes[v + 1]!))) break;
    const comma = bytes[v + 2] === COMMA;
    const nl = v + 2 + (comma ? 1 : 0);
    if (nl >= end || bytes[nl] !== NEWLINE) break;
    if (!isNew(idStart, idLength, h >>> 0, run.lines)) break;
    const n = run.lines++;
    run.lineStart[n] = i;
    run.value[n] = v;
    run.hash[n] = h >>> 0;
    run.idLength[n] = idLength;
    i = nl + 1;
    run.at = i;
    run.comma = comma;
    if (!comma) break;
  }
  return run;
}
