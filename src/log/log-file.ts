import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Clock, TimerHandle } from '../clock.js';
import type { Journal } from '../store/store.js';
import { Backlog, type Step } from './backlog.js';
import { openLogPath, shiftRotated, syncFolder, type LogFs } from './log-path.js';

export type LogFileOptions = {
  /** Buffered lines are written at least this often, and a failed write is retried this often. */
  flushMs: number;
  /** Most unwritten bytes held (queued or kept for retry); lines beyond are dropped and counted. */
  maxBufferedBytes: number;
  /** Rotate at a record boundary once the file reaches this many bytes; 0 (default) never. */
  maxBytes?: number;
  /** Rotated files kept: `<path>.1` newest … `<path>.<keep>` oldest; 0 (default) deletes it. */
  keep?: number;
  clock: Clock;
  /** A write no caller waits on (timer, backpressure, rotation) failed. */
  onError: (err: unknown) => void;
  /** `backlogged` turned false again: paused producers may resume. */
  onDrain?: () => void;
  fs?: LogFs;
};

type Deferred = { resolve(): void; reject(err: unknown): void; promise: Promise<void> };

/**
 * Producers are paused (`backlogged`) past a quarter of the cap: what they already read (a socket
 * chunk per peer) still arrives after the pause, and the other three quarters absorb it, so lines
 * are dropped only if the disk stays broken. They resume below an eighth, not just under the
 * mark, so a flood resumed by one write does not pause again on its next line.
 */
const PAUSE_AT = 1 / 4;
const RESUME_AT = 1 / 8;
/** A rotation that failed (a rename refused) is tried again after this, not at every flush. */
const ROTATE_RETRY_MS = 10_000;

/**
 * An append-only file written in batches. Lines are encoded straight into one buffer (no per-line
 * allocation or syscall); a write takes the whole buffer, so records are never split between two
 * writes' worth of bookkeeping. One write runs at a time, so lines keep their order. A failed or
 * short write keeps its offset: the rest of that buffer is written next, never its start again.
 * `flush()` resolves once everything queued before it is written and fdatasynced.
 */
export class LogFile implements Journal {
  readonly path: string;
  #file: FileHandle;
  #size: number;
  #options: LogFileOptions;
  #fs: LogFs;
  #backlog: Backlog;
  #high: number;
  #low: number;
  #backlogged = false;
  #synced = true;
  /** The file's size at its last successful fdatasync (or open): everything before it is on disk. */
  #syncedSize: number;
  /** Steps written since then, their buffers kept: a failed fdatasync writes them again. */
  #unsynced: Step[] = [];
  #resync = false; // an fdatasync failed: rewrite #unsynced from #syncedSize before anything else
  #folderDirty = false; // a file was created or renamed: fsync the folder before promising
  #rotateAfter = 0;
  #running = false;
  #again = false;
  #failing = false; // the last write failed; cleared by the next one that succeeds
  #closed = false;
  #closing: Promise<void> | null = null;
  #waiters: Deferred[] = [];
  #timer: TimerHandle | null = null;

  private constructor(path: string, file: FileHandle, size: number, options: LogFileOptions) {
    this.path = path;
    this.#file = file;
    this.#size = size;
    this.#syncedSize = size;
    this.#options = options;
    this.#fs = options.fs ?? fsp;
    this.#backlog = new Backlog(options.maxBufferedBytes);
    this.#high = options.maxBufferedBytes * PAUSE_AT;
    this.#low = options.maxBufferedBytes * RESUME_AT;
  }

  static async open(path: string, options: LogFileOptions): Promise<LogFile> {
    const fs = options.fs ?? fsp;
    const { file, size } = await openLogPath(path, fs);
    const log = new LogFile(path, file, size, options);
    log.#folderDirty = true; // the file may have just been created
    return log;
  }

  /** Unwritten line bytes (queued, or kept while the disk refuses writes). */
  get backlogBytes(): number {
    return this.#backlog.unwritten;
  }

  /**
   * Producers should wait: true from a quarter of the cap until a write brings the backlog under
   * an eighth, except while writes are failing. A slow disk catches up, so waiting loses nothing;
   * a full or broken one may never, and a peer left unread gets no answer at all. Then its lines
   * are kept up to the cap and dropped beyond it, so its requests get ERR STORAGE at once.
   */
  get backlogged(): boolean {
    return this.#backlogged && !this.#failing;
  }

  /** Bytes of the records taken since open (counted in batches, see Backlog.accepted). */
  get acceptedBytes(): number {
    return this.#backlog.accepted;
  }

  /** Lines dropped since open because the cap was reached. */
  get dropped(): number {
    return this.#backlog.dropped;
  }

  /**
   * Queues one line (with its newline); never blocks, never throws. False if it was dropped (the
   * cap is reached, or the file is closed): a request logged here must then not be answered OK.
   */
  write(text: string): boolean {
    if (this.#closed) return this.#backlog.drop();
    if (!this.#backlog.add(text)) return false;
    if (this.#backlog.unwritten > this.#high && !this.#backlogged) {
      this.#backlogged = true;
      this.#start(); // now, not at the timer: the backlog is what the timer let build up
    }
    this.#arm();
    return true;
  }

  /**
   * Resolves once every line queued before the call is written and fdatasynced; rejects only if
   * a write or sync failed (dropped lines are reported by `write`, not here).
   */
  flush(): Promise<void> {
    const done = deferred();
    this.#waiters.push(done);
    this.#start();
    return done.promise;
  }

  /**
   * logrotate's convention (nginx USR1): lines queued before the call go to the current file and
   * are made durable there; then the path is opened again (created if it was moved or removed) and
   * begins with a `reopened` record. Rejects if the new file cannot be opened (writing carries on
   * in the old one) or the flush fails.
   */
  async reopen(): Promise<void> {
    if (this.#closed) throw new Error('message log is closed');
    this.#backlog.seal(false);
    const done = deferred();
    this.#backlog.queue.push({ bytes: this.#note('reopened'), at: 0, lines: false, reopen: done });
    await Promise.all([done.promise, this.flush()]);
  }

  /** Writes what is queued and closes; rejects if that final write fails (exit non-zero). */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = null;
    try {
      await this.flush();
    } finally {
      await this.#file.close();
    }
  }

  #arm(): void {
    this.#timer ??= this.#options.clock.setTimeout(() => this.#onTimer(), this.#options.flushMs);
  }

  #onTimer(): void {
    this.#timer = null;
    this.flush().catch(this.#options.onError);
  }

  #start(): void {
    if (this.#running) this.#again = true;
    else void this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    do {
      this.#again = false;
      const waiters = this.#waiters;
      this.#waiters = [];
      try {
        await this.#attempt();
        for (const w of waiters) w.resolve();
        this.#failing = false;
        // While producers are paused, write back to back until they can resume.
        if (this.#backlogged) this.#again = true;
      } catch (err) {
        const paused = this.backlogged;
        this.#failing = true;
        if (paused) this.#options.onDrain?.(); // release them: see `backlogged`
        for (const w of waiters) w.reject(err);
        if (waiters.length === 0) this.#options.onError(err);
        this.#again = false; // retried on the timer, not in a tight loop against a full disk
        if (!this.#closed) this.#arm();
      }
    } while (this.#waiters.length > 0 || this.#again);
    this.#running = false;
  }

  async #attempt(): Promise<void> {
    if (this.#resync) await this.#rewrite();
    const queue = this.#backlog.queue;
    const head = queue[0];
    const atBoundary = head === undefined || (head.at === 0 && head.reopen === undefined);
    if (this.#rotateDue() && atBoundary) await this.#rotate();
    let sealed = false;
    for (;;) {
      const step = queue[0];
      if (step === undefined) {
        // Only once the backlog is out is the buffer sealed, so a failing disk never holds more
        // than two buffers, however many attempts fail.
        if (sealed) break;
        sealed = true;
        this.#backlog.seal(true);
        continue;
      }
      const skipped = step.reopen ? !(await this.#switchFile(step.reopen)) : false;
      while (step.at < step.bytes.length) {
        const n = (await this.#file.write(step.bytes, step.at)).bytesWritten;
        this.#size += n;
        this.#synced = false;
        this.#backlog.wrote(step, n);
        if (step.lines) this.#drained();
      }
      const written = this.#backlog.shift()!;
      if (skipped) this.#backlog.release(written);
      else this.#unsynced.push(written);
    }
    if (this.#folderDirty) await this.#syncFolder();
    await this.#datasync();
  }

  #drained(): void {
    if (this.#backlogged && this.#backlog.unwritten <= this.#low) {
      this.#backlogged = false;
      this.#options.onDrain?.();
    }
  }

  #note(event: 'reopened' | 'rotated'): Buffer {
    return Buffer.from(`{"level":30,"time":${this.#options.clock.now()},"event":"${event}"}\n`);
  }

  async #datasync(): Promise<void> {
    if (this.#synced) return;
    try {
      await this.#file.datasync();
    } catch (err) {
      // Linux marks the pages of a failed writeback clean and reports the error once: a second
      // fdatasync succeeds without writing them (PostgreSQL's "fsyncgate"). Retrying the sync
      // would promise lines that may never reach the disk, so they are written again first.
      this.#resync = true;
      throw err;
    }
    this.#synced = true;
    this.#syncedSize = this.#size;
    for (const step of this.#unsynced) this.#backlog.release(step);
    this.#unsynced = [];
  }

  /**
   * After a failed fdatasync: cuts the file back to where the last good one left it, and writes
   * every step since again, in order (a second copy appended would duplicate records). Then
   * #datasync must succeed before any of it is promised. A failure here leaves #resync set, so
   * the next attempt starts over from the same cut.
   */
  async #rewrite(): Promise<void> {
    await this.#file.truncate(this.#syncedSize);
    this.#size = this.#syncedSize;
    this.#synced = false;
    for (const step of this.#unsynced) {
      for (let at = 0; at < step.bytes.length;) {
        const n = (await this.#file.write(step.bytes, at)).bytesWritten;
        at += n;
        this.#size += n;
      }
    }
    this.#resync = false;
  }

  async #syncFolder(): Promise<void> {
    await syncFolder(this.path, this.#fs);
    this.#folderDirty = false;
  }

  /**
   * Lines before the switch are made durable in the old file first: they were promised there.
   * False if no new file could be opened: the step's `reopened` record is then not written.
   */
  async #switchFile(done: { resolve(): void; reject(err: unknown): void }): Promise<boolean> {
    await this.#datasync();
    const step = this.#backlog.queue[0]!;
    step.reopen = null;
    try {
      await this.#replaceFile();
      done.resolve();
      return true;
    } catch (err) {
      step.at = step.bytes.length; // no new file: no `reopened` record in the old one
      done.reject(err);
      return false;
    }
  }

  async #replaceFile(): Promise<void> {
    const { file, size } = await openLogPath(this.path, this.#fs);
    const old = this.#file;
    this.#file = file;
    this.#size = size;
    this.#syncedSize = size; // the old file's steps were synced (its #datasync came first)
    this.#folderDirty = true;
    this.#synced = true;
    await old.close().catch(this.#options.onError);
  }

  #rotateDue(): boolean {
    const max = this.#options.maxBytes ?? 0;
    return max > 0 && this.#size >= max && this.#options.clock.now() >= this.#rotateAfter;
  }

  /**
   * Between whole buffers only, so no record is split across files. Durability: the old file's
   * data is synced before its name changes, and the folder is synced (renames and the new entry)
   * before any flush resolves, so after a crash an acknowledged line is in some log file.
   */
  async #rotate(): Promise<void> {
    await this.#datasync();
    try {
      await shiftRotated(this.path, this.#options.keep ?? 0, this.#fs);
      await this.#replaceFile();
    } catch (err) {
      // Keep appending to the current file (its data is safe); try again later, not every flush.
      this.#rotateAfter = this.#options.clock.now() + ROTATE_RETRY_MS;
      this.#folderDirty = true;
      this.#options.onError(err);
      return;
    }
    this.#backlog.queue.unshift({ bytes: this.#note('rotated'), at: 0, lines: false });
  }
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
