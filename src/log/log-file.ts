import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock, TimerHandle } from '../clock.js';
import type { Journal } from '../store/store.js';

export type LogFileOptions = {
  /** Buffered lines are written at least this often. */
  flushMs: number;
  /** Most bytes held while the disk refuses writes; lines beyond are dropped and counted. */
  maxBufferedBytes: number;
  clock: Clock;
  /** A timer-driven flush failed; commits report their own failures to their callers. */
  onError: (err: unknown) => void;
  fs?: Pick<typeof fsp, 'open' | 'mkdir'>;
};

/**
 * An append-only file written in batches. Lines wait in memory and go out on a timer or when a
 * state commit calls `flush()`, which resolves only once they are written and fdatasynced. One
 * write runs at a time, so lines keep their order; a failed write keeps its unwritten bytes for
 * the next attempt, so a disk that recovers loses nothing that fit in the buffer.
 */
const INITIAL_BUFFER = 64 * 1024;
const EMPTY = Buffer.alloc(0);

export class LogFile implements Journal {
  #file: FileHandle;
  #options: LogFileOptions;
  // Lines are encoded straight into #buffer; a flush writes it while new lines go to #spare,
  // and the two swap, so the hot path never joins, copies or allocates per line.
  #buffer = Buffer.allocUnsafe(INITIAL_BUFFER);
  #spare = Buffer.allocUnsafe(INITIAL_BUFFER);
  #length = 0;
  #dropped = 0;
  #retry: Buffer | null = null; // bytes of a failed write, to go before #buffer
  #running = false;
  #waiters: Array<{ resolve(): void; reject(err: unknown): void }> = [];
  #timer: TimerHandle | null = null;

  private constructor(file: FileHandle, options: LogFileOptions) {
    this.#file = file;
    this.#options = options;
  }

  static async open(path: string, options: LogFileOptions): Promise<LogFile> {
    const fs = options.fs ?? fsp;
    await fs.mkdir(dirname(path), { recursive: true });
    const file = await fs.open(path, 'a+', 0o644);
    // A crash in the middle of a write can leave half a record at the end: start on a new line,
    // so that half record stays one bad line instead of corrupting the first new one too.
    const { size } = await file.stat();
    if (size > 0) {
      const last = Buffer.alloc(1);
      await file.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) await file.write('\n');
    }
    return new LogFile(file, options);
  }

  // Stand-ins until the bounded-backlog work lands (issue 11): never backlogged, so never drains.
  onDrain: (() => void) | null = null;
  get backlogged(): boolean {
    return false;
  }

  /** Queues one line (with its newline); never blocks, never throws. */
  write(text: string): void {
    const most = text.length * 3; // UTF-8 bytes per UTF-16 unit, at most
    if (this.#length + (this.#retry?.length ?? 0) + most > this.#options.maxBufferedBytes) {
      this.#dropped++;
      return;
    }
    if (this.#length + most > this.#buffer.length) this.#grow(this.#length + most);
    this.#length += this.#buffer.write(text, this.#length);
    this.#timer ??= this.#options.clock.setTimeout(() => {
      this.#timer = null;
      this.flush().catch(this.#options.onError);
    }, this.#options.flushMs);
  }

  /** Resolves once every line queued before the call is on disk. */
  flush(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (!this.#running) void this.#run();
    return done;
  }

  async close(): Promise<void> {
    if (this.#timer !== null) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = null;
    try {
      await this.flush();
    } finally {
      await this.#file.close();
    }
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#waiters.length > 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      try {
        await this.#writeBuffered();
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err);
      }
    }
    this.#running = false;
  }

  #grow(bytes: number): void {
    const grown = Buffer.allocUnsafe(Math.max(bytes, this.#buffer.length * 2));
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }

  async #writeBuffered(): Promise<void> {
    const dropped = this.#dropped;
    const retry = this.#retry ?? EMPTY;
    const full = this.#buffer;
    const lines = full.subarray(0, this.#length);
    this.#retry = null;
    this.#buffer = this.#spare;
    this.#length = 0;
    let written = 0;
    try {
      for (const data of [retry, lines]) {
        let at = 0;
        while (at < data.length) {
          const n = (await this.#file.write(data, at)).bytesWritten;
          at += n;
          written += n;
        }
      }
      if (dropped > 0) await this.#file.write(`{"event":"dropped","lines":${dropped}}\n`);
      await this.#file.datasync();
    } catch (err) {
      // Keep what did not reach the file, in order, ahead of lines queued meanwhile.
      this.#retry = Buffer.concat([retry, lines]).subarray(written);
      throw err;
    } finally {
      this.#spare = full;
    }
    this.#dropped -= dropped;
    // Lines were dropped while the disk failed: a request whose reply waits on this flush may be
    // among them, so this flush must not count as "logged". Later flushes succeed normally.
    if (dropped > 0) throw new Error(`message log buffer overflowed; ${dropped} lines dropped`);
  }
}
