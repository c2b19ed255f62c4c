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
export class LogFile implements Journal {
  #file: FileHandle;
  #options: LogFileOptions;
  #chunks: string[] = [];
  #bytes = 0;
  #dropped = 0;
  #retry: Buffer | null = null; // bytes of a failed write, in front of #chunks
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
    return new LogFile(await fs.open(path, 'a', 0o644), options);
  }

  /** Queues one line (with its newline); never blocks, never throws. */
  write(text: string): void {
    if (this.#bytes + text.length > this.#options.maxBufferedBytes) {
      this.#dropped++;
      return;
    }
    this.#chunks.push(text);
    this.#bytes += text.length;
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

  async #writeBuffered(): Promise<void> {
    const dropped = this.#dropped;
    const data = Buffer.concat([
      this.#retry ?? Buffer.alloc(0),
      Buffer.from(this.#chunks.join('')),
    ]);
    this.#chunks = [];
    this.#bytes = 0;
    this.#retry = null;
    let written = 0;
    try {
      while (written < data.length) {
        written += (await this.#file.write(data, written)).bytesWritten;
      }
      if (dropped > 0) await this.#file.write(`{"event":"dropped","lines":${dropped}}\n`);
      await this.#file.datasync();
    } catch (err) {
      this.#retry = data.subarray(written);
      this.#bytes += this.#retry.length;
      throw err;
    }
    this.#dropped -= dropped;
    // Lines were dropped while the disk failed: a request whose reply waits on this flush may be
    // among them, so this flush must not count as "logged". Later flushes succeed normally.
    if (dropped > 0) throw new Error(`message log buffer overflowed; ${dropped} lines dropped`);
  }
}
