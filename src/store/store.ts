import { promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { makePrivateFolder } from '../fs/private-folder.js';
import { realFilePath } from '../fs/real-path.js';
import { realClock, type Clock, type TimerHandle } from '../clock.js';
import { STORE_DEFAULTS } from '../limits.js';
import { fsyncDir } from '../fs/sync-folder.js';
import { probeWritable, removeStaleTemps, writeFileAtomic, type WriteFs } from './atomic-write.js';
import { encodeRecords, JournalFile, journalPath, listGenerations } from './journal.js';
import { loadCheckpoint, replayJournals } from './recover.js';
import type { StateTable } from './state-table.js';

/** Something that must reach disk together with each commit (the message log). */
export interface Journal {
  /** Called synchronously when a write starts; resolves once what was written so far is durable. */
  flush(): Promise<void>;
  /** Bytes of records queued, not yet written; without it a commit is never delayed. */
  readonly backlogBytes?: number;
}

export type StoreOptions = {
  /** Reads go through `open` (the file is read in chunks), so `readFile` is no longer used. */
  fs?: WriteFs & Pick<typeof fsp, 'mkdir'>;
  /** The message log, flushed with every commit. (Not the value journal, which the store owns.) */
  journal?: Journal;
  /** Set an unreadable file aside (renamed `<real path>.corrupt-<time>`, see `setAside`) and start empty. */
  repair?: boolean;
  /** After each commit: its duration, the values it changed, and whether it was made durable. */
  onCommit?(ms: number, values: number, ok: boolean): void;
  /** See STORE_DEFAULTS. */
  checkpointBytes?: number;
  checkpointMs?: number;
  commitDelayMs?: number;
  commitDelayBytes?: number;
  /** The commit delay's timer; tests pass a fake clock. */
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  /** Told what start-up found in the journal (a torn tail cut) and of a failed checkpoint. */
  warn?(details: Record<string, unknown>, message: string): void;
  /** Milliseconds, for the checkpoint's age limit; tests pass their own. */
  now?(): number;
};

type Deferred = { promise: Promise<void>; resolve(): void; reject(err: unknown): void };

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {}); // Callers handle it; this only stops an unhandled-rejection crash.
  return { promise, resolve, reject };
}

/** After a failed checkpoint, the next is not tried for this long (a broken disk, not a loop). */
const CHECKPOINT_RETRY_MS = 1_000;

/**
 * The id -> value map and its durable copy: the state file (a checkpoint) plus the journal of the
 * values changed since, kept with group commit: one commit is in flight at a time; changes made
 * meanwhile ride on the next. Every `set` and `sync` resolves only once a commit that contains it
 * has finished (its journal records and the message log fdatasynced), and rejects if it failed.
 * A commit costs the changed ids, not the table: the whole table is written only by a checkpoint,
 * in the background, once the journal is large or old enough, and at `close`.
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
  #log: Journal | undefined;
  #journal: JournalFile;
  /** The ids changed since the last commit started, with their values. */
  #changed = new Map<string, number>();
  #inFlight: Promise<void> | null = null;
  #next: Deferred | null = null;
  #commits = 0;
  #onCommit: StoreOptions['onCommit'];
  #warn: NonNullable<StoreOptions['warn']>;
  #now: () => number;
  #checkpointBytes: number;
  #checkpointMs: number;
  #stateBytes: number;
  #checkpointing: Promise<void> | null = null;
  #checkpointAfter = 0; // no background checkpoint before this time (after a failure)
  #closing: Promise<void> | null = null;
  #commitDelayMs: number;
  #commitDelayBytes: number;
  #clock: NonNullable<StoreOptions['clock']>;
  #delayed: TimerHandle | null = null; // the next commit is held (see #startNext)
  #held: () => number = () => 0;

  private constructor(
    path: string,
    realPath: string,
    values: StateTable,
    setAside: string | null,
    stateBytes: number,
    journal: JournalFile,
    options: StoreOptions,
  ) {
    this.path = path;
    this.#realPath = realPath;
    this.setAside = setAside;
    this.#values = values;
    this.#stateBytes = stateBytes;
    this.#journal = journal;
    this.#fs = options.fs ?? fsp;
    this.#log = options.journal;
    this.#onCommit = options.onCommit;
    this.#warn = options.warn ?? (() => {});
    this.#now = options.now ?? (() => performance.now());
    this.#checkpointBytes = options.checkpointBytes ?? STORE_DEFAULTS.checkpointBytes;
    this.#checkpointMs = options.checkpointMs ?? STORE_DEFAULTS.checkpointMs;
    this.#commitDelayMs = options.commitDelayMs ?? STORE_DEFAULTS.commitDelayMs;
    this.#commitDelayBytes = options.commitDelayBytes ?? STORE_DEFAULTS.commitDelayBytes;
    this.#clock = options.clock ?? realClock;
  }

  /** How many ids connections hold now: the commit delay's measure of an open loop. */
  countHeld(held: () => number): void {
    this.#held = held;
  }

  /**
   * Loads the checkpoint (missing means empty), replays the journal generations over it in order
   * (cutting a torn tail), and proves the folder can be written, before any client.
   */
  static async open(path: string, options: StoreOptions = {}): Promise<Store> {
    const fs = options.fs ?? fsp;
    const now = options.now ?? (() => performance.now());
    await makePrivateFolder(dirname(path), fs);
    const realPath = await realFilePath(path); // once: the lock resolved the same way
    const loaded = await loadCheckpoint(path, realPath, fs, options.repair ?? false);
    await removeStaleTemps(realPath, fs);
    // Earlier versions wrote beside a symlink (and replaced it): their leftovers are stale too.
    if (realPath !== path) await removeStaleTemps(path, fs);
    const replayed = await replayJournals(realPath, loaded.values, fs);
    for (const cut of replayed.cut)
      options.warn?.(cut, 'journal: cut a torn tail (a write that was never acknowledged)');
    let stateBytes = loaded.bytes;
    if (loaded.existed) {
      await probeWritable(realPath, fs); // cheap, unlike rewriting a large file just to test the folder
    } else {
      // Create the file now, so it exists for `cat` and `jq`.
      const bytes = loaded.values.serialize();
      await writeFileAtomic(realPath, bytes, fs);
      stateBytes = bytes.length;
    }
    const journal =
      replayed.last === null
        ? await JournalFile.create(realPath, 1, fs, now())
        : await JournalFile.reopen(
            realPath,
            replayed.last.generation,
            replayed.last.bytes,
            fs,
            now(),
          );
    return new Store(path, realPath, loaded.values, loaded.setAside, stateBytes, journal, options);
  }

  get size(): number {
    return this.#values.size;
  }

  /** Completed commits, for tests and benchmarks that check coalescing. */
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
      this.#changed.set(id, value);
      return this.sync();
    }
    // Unchanged: nothing new for the journal, but the caller's request line must still reach the
    // message log before it is acknowledged (protocol.md: the line of every OK is in the log). The
    // value may ride on a commit in flight, so that is awaited too.
    return Promise.all([this.sync(), this.#log?.flush()]).then(() => {});
  }

  /** Resolves once every change made so far is durable. */
  sync(): Promise<void> {
    if (this.#changed.size === 0) return this.#inFlight ?? Promise.resolve();
    if (this.#next === null) {
      this.#next = deferred();
      // Start on the next turn of the event loop so every request read in this one shares the write.
      if (this.#inFlight === null && this.#delayed === null) setImmediate(() => void this.#write());
    } else if (this.#delayed !== null && this.#gathered()) {
      this.#release();
    }
    return this.#next.promise;
  }

  /**
   * A clean stop: every change committed, then a last checkpoint, so the state file alone is exact
   * and no journal is left. If it fails, the journal stays and the next start replays it.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#release();
      await this.sync();
      await this.#checkpointing;
      await this.#checkpoint(true);
    })();
    return this.#closing;
  }

  async #write(): Promise<void> {
    const done = this.#next;
    if (done === null) return;
    this.#next = null;
    this.#inFlight = done.promise;
    const started = performance.now();
    const changed = this.#changed;
    this.#changed = new Map();
    const journal = this.#journal; // a checkpoint may start the next generation meanwhile
    try {
      // Order of a commit (protocol.md, Durability): (1) one record per id changed since the last
      // commit is appended to the current journal generation; (2) that generation and the message
      // log (whose buffer already holds the request line of every value here) are fdatasynced, the
      // two at once; (3) only then does `done` resolve, and the waiting requests are answered OK.
      const records = encodeRecords(changed);
      await Promise.all([journal.append(records), this.#log?.flush()]);
      this.#commits++;
      this.#onCommit?.(performance.now() - started, changed.size, true);
      done.resolve();
      this.#maybeCheckpoint();
    } catch (err) {
      // Not durable: the next commit writes these ids again. One set since has its newer value
      // there already; any other still has the value it had in this commit.
      for (const [id, value] of changed) if (!this.#changed.has(id)) this.#changed.set(id, value);
      this.#onCommit?.(performance.now() - started, changed.size, false);
      done.reject(err);
    } finally {
      this.#inFlight = null;
      if (this.#next !== null) this.#startNext();
    }
  }

  /**
   * Changes waited for the commit that just ended. Under an open loop (fewer than an eighth of the
   * held ids have one waiting), the next commit waits up to commitDelayMs for commitDelayBytes of
   * log records, checked at each `sync`: fewer, larger commits re-dirty fewer pages. A closed
   * loop starts it at once: there, the clients a delay would gather are those it keeps waiting.
   */
  #startNext(): void {
    const openLoop = this.#changed.size * 8 < this.#held();
    if (this.#commitDelayMs === 0 || !openLoop || this.#closing !== null || this.#gathered()) {
      void this.#write();
      return;
    }
    this.#delayed = this.#clock.setTimeout(() => {
      this.#delayed = null;
      void this.#write();
    }, this.#commitDelayMs);
  }

  /** Starts a commit the delay holds (on the next turn, as any commit starts), if one is held. */
  #release(): void {
    if (this.#delayed === null) return;
    this.#clock.clearTimeout(this.#delayed);
    this.#delayed = null;
    setImmediate(() => void this.#write());
  }

  #gathered(): boolean {
    return (this.#log?.backlogBytes ?? Infinity) >= this.#commitDelayBytes;
  }

  /**
   * Starts a background checkpoint once the journal holds checkpointBytes, or half the state
   * file's size if that is more (so checkpoints add at most ~2 bytes written per journal byte,
   * and replay at start costs at most about half of loading the checkpoint), or is checkpointMs old.
   */
  #maybeCheckpoint(): void {
    if (this.#checkpointing !== null || this.#closing !== null) return;
    const now = this.#now();
    const bytes = this.#journal.bytes;
    if (bytes === 0 || now < this.#checkpointAfter) return;
    const limit = Math.max(this.#checkpointBytes, this.#stateBytes / 2);
    if (bytes < limit && now - this.#journal.startedAt < this.#checkpointMs) return;
    this.#checkpointing = this.#checkpoint(false)
      .catch((err: unknown) => {
        this.#checkpointAfter = this.#now() + CHECKPOINT_RETRY_MS;
        this.#warn({ err }, 'checkpoint failed; the journal keeps every value, will retry');
      })
      .finally(() => (this.#checkpointing = null));
  }

  /**
   * Writes the whole table as the new state file and deletes the journal generations it holds.
   * `final` (at close): no new generation, and every generation is deleted.
   */
  async #checkpoint(final: boolean): Promise<void> {
    const old = this.#journal;
    // (a) From here on, commits append to generation N+1 (its name made durable first). A commit
    // still in flight on N is fine: its values are already in the table, so in the snapshot.
    if (!final) {
      this.#journal = await JournalFile.create(
        this.#realPath,
        old.generation + 1,
        this.#fs,
        this.#now(),
      );
    }
    // (b) The snapshot holds every record of N and older. (c) writeFileAtomic: temp file written
    // and fsynced, renamed over the state file, folder fsynced. Only after that may N go.
    const snapshot = this.#values.serialize();
    try {
      await writeFileAtomic(this.#realPath, snapshot, this.#fs);
    } finally {
      await old.close(); // no commit appends to N any more (one in flight on it is awaited)
    }
    this.#stateBytes = snapshot.length;
    // (d) Delete generations up to N, oldest first, each unlink made durable (folder fsync) before
    // the next: a crash must never leave an older generation without the newer ones it precedes,
    // or replaying it alone would set values older than the checkpoint's.
    for (const generation of await listGenerations(this.#realPath, this.#fs)) {
      if (generation > old.generation) break;
      await this.#fs.unlink(journalPath(this.#realPath, generation));
      await fsyncDir(dirname(this.#realPath), this.#fs);
    }
  }
}
