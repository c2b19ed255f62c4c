import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { makePrivateFolder } from '../fs/private-folder.js';
import { realFilePath } from '../fs/real-path.js';
import { probeWritable, removeStaleTemps, writeFileAtomic, type WriteFs } from './atomic-write.js';
import { READ_CHUNK_BYTES, readState, StateFileError } from './state-file.js';
import { StateTable } from './state-table.js';

/** Something that must reach disk together with each state write (the message log). */
export interface Journal {
  /** Called synchronously when a write starts; resolves once what was written so far is durable. */
  flush(): Promise<void>;
}

export type StoreOptions = {
  /** Reads go through `open` (the file is read in chunks), so `readFile` is no longer used. */
  fs?: WriteFs & Pick<typeof fsp, 'mkdir'>;
  journal?: Journal;
  /** Set an unreadable file aside (renamed `<real path>.corrupt-<time>`, see `setAside`) and start empty. */
  repair?: boolean;
  /** After each commit: its duration, the values it changed, and whether it was made durable. */
  onCommit?(ms: number, values: number, ok: boolean): void;
};

type Deferred = { promise: Promise<void>; resolve(): void; reject(err: unknown): void };

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {}); // Callers handle it; this only stops an unhandled-rejection crash.
  return { promise, resolve, reject };
}

/**
 * The id -> value map and its durable copy, the state file, kept with group commit: one write is
 * in flight at a time; changes made meanwhile ride on the next write. Every `set` and `sync`
 * resolves only once a write that contains it has finished (file fsynced, renamed, folder fsynced,
 * journal flushed), and rejects if that write failed.
 */
export class Store {
  /** The path as given, for messages. */
  readonly path: string;
  /** Where an unreadable file was renamed under `repair`, or null if none was. */
  readonly setAside: string | null;
  // Writes go to the real path: a symlinked state file is written through to its target (temp file
  // and rename in the target's folder), so the link stays a link and both paths name one file.
  #realPath: string;
  #values: StateTable;
  #fs: NonNullable<StoreOptions['fs']>;
  #journal: Journal | undefined;
  #dirty = false; // changes not yet in any started write
  #inFlight: Promise<void> | null = null;
  #next: Deferred | null = null;
  #commits = 0;
  #changed = 0; // values changed since the last write started
  #onCommit: StoreOptions['onCommit'];

  private constructor(path: string, realPath: string, loaded: Loaded, options: StoreOptions) {
    this.path = path;
    this.#realPath = realPath;
    this.setAside = loaded.setAside;
    this.#values = loaded.values;
    this.#fs = options.fs ?? fsp;
    this.#journal = options.journal;
    this.#onCommit = options.onCommit;
  }

  /** Loads the state file (missing means empty) and proves it can be written, before any client. */
  static async open(path: string, options: StoreOptions = {}): Promise<Store> {
    const fs = options.fs ?? fsp;
    await makePrivateFolder(dirname(path), fs);
    const realPath = await realFilePath(path); // once: the lock resolved the same way
    const loaded = await load(path, realPath, fs, options.repair ?? false);
    await removeStaleTemps(realPath, fs);
    // Earlier versions wrote beside a symlink (and replaced it): their leftovers are stale too.
    if (realPath !== path) await removeStaleTemps(path, fs);
    const store = new Store(path, realPath, loaded, options);
    if (loaded.existed) {
      await probeWritable(realPath, fs); // cheap, unlike rewriting a large file just to test the folder
    } else {
      store.#dirty = true; // create the file now, so it exists for `cat` and `jq`
      await store.sync();
    }
    return store;
  }

  get size(): number {
    return this.#values.size;
  }

  /** Completed writes, for tests and benchmarks that check coalescing. */
  get commits(): number {
    return this.#commits;
  }

  get(id: string): number {
    return this.#values.get(id) ?? 0;
  }

  has(id: string): boolean {
    return this.#values.get(id) !== undefined;
  }

  /** Sets the value in memory now; resolves once it is durable. */
  set(id: string, value: number): Promise<void> {
    if (this.#values.set(id, value)) {
      this.#dirty = true;
      this.#changed++;
      return this.sync();
    }
    // Unchanged: nothing new for the state file, but the caller's request line must still reach
    // the journal before it is acknowledged (protocol.md: the line of every OK is in the log). The
    // value may ride on a write in flight, so that is awaited too.
    return Promise.all([this.sync(), this.#journal?.flush()]).then(() => {});
  }

  /** Resolves once every change made so far is durable. */
  sync(): Promise<void> {
    if (!this.#dirty) return this.#inFlight ?? Promise.resolve();
    if (this.#next === null) {
      this.#next = deferred();
      // Start on the next turn of the event loop so every request read in this one shares the write.
      if (this.#inFlight === null) setImmediate(() => this.#write());
    }
    return this.#next.promise;
  }

  async #write(): Promise<void> {
    const done = this.#next;
    if (done === null) return;
    this.#next = null;
    this.#dirty = false;
    this.#inFlight = done.promise;
    const started = performance.now();
    const changed = this.#changed;
    this.#changed = 0;
    try {
      // The journal is flushed in the same step: the request lines of every value in this write
      // are already in its buffer, so once both finish, each acknowledged request is logged too.
      await Promise.all([
        writeFileAtomic(this.#realPath, this.#values.serialize(), this.#fs),
        this.#journal?.flush(),
      ]);
      this.#commits++;
      this.#onCommit?.(performance.now() - started, changed, true);
      done.resolve();
    } catch (err) {
      this.#dirty = true; // Not durable: the next sync() writes these changes again.
      this.#changed += changed;
      this.#onCommit?.(performance.now() - started, changed, false);
      done.reject(err);
    } finally {
      this.#inFlight = null;
      if (this.#next !== null) void this.#write();
    }
  }
}

type Loaded = { values: StateTable; existed: boolean; setAside: string | null };

/**
 * Reads the state file (through a symlink, if it is one) in chunks; missing means empty. Under
 * `repair`, an unreadable file is renamed aside beside the real file, never replaced by a write.
 */
async function load(
  path: string,
  realPath: string,
  fs: NonNullable<StoreOptions['fs']>,
  repair: boolean,
): Promise<Loaded> {
  let file: FileHandle;
  try {
    file = await fs.open(realPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { values: new StateTable(), existed: false, setAside: null };
    throw new StateFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const { size } = await file.stat();
    return { values: await readState(file, READ_CHUNK_BYTES, size), existed: true, setAside: null };
  } catch (err) {
    if (!(err instanceof StateFileError)) {
      throw new StateFileError(`cannot read ${path}: ${(err as Error).message}`);
    }
    if (!repair) {
      throw new StateFileError(
        `state file ${path}: ${err.message}. Fix it, or start with --repair to set it aside.`,
      );
    }
    const aside = `${realPath}.corrupt-${Date.now()}`;
    await fs.rename(realPath, aside);
    return { values: new StateTable(), existed: false, setAside: aside };
  } finally {
    await file.close();
  }
}
