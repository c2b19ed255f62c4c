import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { EXCLUSIVE_CREATE, PRIVATE_FILE_MODE } from '../fs/exclusive-open.js';
import { fsyncDir } from '../fs/sync-folder.js';
import type { WriteFs } from './atomic-write.js';
import { JournalParser, type ParseEnd } from './journal-format.js';

export { encodeRecords } from './journal-format.js';

const APPEND = constants.O_APPEND | constants.O_NOFOLLOW;
const READ_CHUNK_BYTES = 1024 * 1024;

/** `values.json.journal.7`: generation 7 of the journal of `values.json`. */
export function journalPath(statePath: string, generation: number): string {
  return `${statePath}.journal.${generation}`;
}

/** The journal generations beside `statePath`, oldest first. */
export async function listGenerations(statePath: string, fs: WriteFs): Promise<number[]> {
  const prefix = `${basename(statePath)}.journal.`;
  return (await fs.readdir(dirname(statePath)))
    .filter((n) => n.startsWith(prefix) && /^[1-9][0-9]{0,15}$/.test(n.slice(prefix.length)))
    .map((n) => Number(n.slice(prefix.length)))
    .sort((a, b) => a - b);
}

/**
 * Applies one generation's records to `apply` (streamed, never the whole file in memory) and cuts
 * a torn tail off the file, so later appends follow the last whole record. Returns what it found.
 */
export async function replayGeneration(
  path: string,
  apply: (id: string, value: number) => void,
  fs: WriteFs,
): Promise<ParseEnd> {
  const parser = new JournalParser(apply);
  const file = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, READ_CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      parser.push(buffer.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
  const end = parser.end();
  if (end.cutBytes > 0) {
    const file = await fs.open(path, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      await file.truncate(end.goodBytes);
      await file.sync();
    } finally {
      await file.close();
    }
  }
  return end;
}

/**
 * One journal generation open for appending (O_APPEND, O_NOFOLLOW, 0600). Appends come one at a
 * time (the store has one commit in flight); each resolves once its bytes are fdatasynced.
 */
export class JournalFile {
  readonly generation: number;
  readonly path: string;
  /** When this generation was started (the store's clock), for the checkpoint's age limit. */
  readonly startedAt: number;
  #file: FileHandle;
  #bytes: number; // whole records known to be in the file
  #torn = false; // a failed append may have left part of its bytes at the end
  #last: Promise<void> = Promise.resolve();

  private constructor(
    path: string,
    generation: number,
    file: FileHandle,
    bytes: number,
    at: number,
  ) {
    this.path = path;
    this.generation = generation;
    this.#file = file;
    this.#bytes = bytes;
    this.startedAt = at;
  }

  /**
   * A new, empty generation. The folder is fsynced before the first append: fdatasync of a file
   * does not make its name durable, and a record in a file that a crash unnames is lost.
   */
  static async create(
    statePath: string,
    generation: number,
    fs: WriteFs,
    at: number,
  ): Promise<JournalFile> {
    const path = journalPath(statePath, generation);
    const file = await fs.open(path, EXCLUSIVE_CREATE | APPEND, PRIVATE_FILE_MODE);
    try {
      await fsyncDir(dirname(statePath), fs);
    } catch (err) {
      await file.close();
      await fs.unlink(path).catch(() => {});
      throw err;
    }
    return new JournalFile(path, generation, file, 0, at);
  }

  /** The generation a previous run left (already replayed and cut to `bytes`), to go on with. */
  static async reopen(
    statePath: string,
    generation: number,
    bytes: number,
    fs: WriteFs,
    at: number,
  ): Promise<JournalFile> {
    const path = journalPath(statePath, generation);
    const file = await fs.open(path, constants.O_WRONLY | APPEND);
    await file.chmod(PRIVATE_FILE_MODE).catch(() => {});
    return new JournalFile(path, generation, file, bytes, at);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Appends `data` and fdatasyncs it; rejects if either failed (then nothing in it counts). */
  append(data: Buffer): Promise<void> {
    const done = this.#last.then(() => this.#append(data));
    this.#last = done.catch(() => {});
    return done;
  }

  async #append(data: Buffer): Promise<void> {
    // After a failed append the file may end in part of a record: cut it first, or every record
    // after it would be behind a bad line and cut at the next start.
    if (this.#torn) await this.#file.truncate(this.#bytes);
    this.#torn = true;
    for (let at = 0; at < data.length;) {
      const { bytesWritten } = await this.#file.write(data, at, data.length - at);
      if (bytesWritten <= 0) throw new Error('journal write made no progress');
      at += bytesWritten;
    }
    await this.#file.datasync();
    this.#torn = false;
    this.#bytes += data.length;
  }

  /** Closes once appends already started are done. */
  async close(): Promise<void> {
    await this.#last;
    await this.#file.close();
  }
}
