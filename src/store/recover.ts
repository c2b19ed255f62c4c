import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { WriteFs } from './atomic-write.js';
import { JournalParser } from './journal-format.js';
import { journalPath, listGenerations, replayGeneration } from './journal.js';
import { READ_CHUNK_BYTES, readState, StateFileError } from './state-file.js';
import { StateTable } from './state-table.js';

export type LoadFs = WriteFs & Pick<typeof fsp, 'mkdir'>;

export type Loaded = {
  values: StateTable;
  existed: boolean;
  setAside: string | null;
  /** Size of the state file read (0 if none), to scale the checkpoint limit. */
  bytes: number;
};

/**
 * Reads the state file (through a symlink, if it is one) in chunks; missing means empty. Under
 * `repair`, an unreadable file is renamed aside beside the real file, never replaced by a write.
 */
export async function loadCheckpoint(
  path: string,
  realPath: string,
  fs: LoadFs,
  repair: boolean,
): Promise<Loaded> {
  let file: FileHandle;
  try {
    // O_NONBLOCK: a FIFO at the path would otherwise block the open, and the start, until
    // something writes to it. It changes nothing for a regular file.
    file = await fs.open(realPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { values: new StateTable(), existed: false, setAside: null, bytes: 0 };
    throw new StateFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw new Error('not a regular file');
    const size = stat.size;
    const values = await readState(file, READ_CHUNK_BYTES, size);
    return { values, existed: true, setAside: null, bytes: size };
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
    return { values: new StateTable(), existed: false, setAside: aside, bytes: 0 };
  } finally {
    await file.close();
  }
}

export type Replayed = {
  /** The newest generation and its length after the cut, or null if there was no journal. */
  last: { generation: number; bytes: number } | null;
  records: number;
  cut: { file: string; cutBytes: number; keptBytes: number }[];
};

/**
 * Replays every journal generation beside the state file over `values`, oldest first, and cuts
 * each torn tail off its file. Replay is idempotent: a record sets a value, it does not add to
 * one, so a generation that a crash left after its checkpoint was written sets the values that
 * checkpoint already holds, and the newer generations after it set the rest.
 */
export async function replayJournals(
  realPath: string,
  values: StateTable,
  fs: WriteFs,
): Promise<Replayed> {
  const replayed: Replayed = { last: null, records: 0, cut: [] };
  const apply = (id: string, value: number) => void values.set(id, value);
  for (const generation of await listGenerations(realPath, fs)) {
    const file = journalPath(realPath, generation);
    const end = await replayGeneration(file, apply, fs);
    replayed.records += end.records;
    if (end.cutBytes > 0)
      replayed.cut.push({ file, cutBytes: end.cutBytes, keptBytes: end.goodBytes });
    replayed.last = { generation, bytes: end.goodBytes };
  }
  return replayed;
}

/**
 * The state as a restart would see it (checkpoint plus journals), read-only, for tests and tools.
 * A generation a running server deletes between the listing and the read means a checkpoint
 * finished meanwhile: the read starts over.
 */
export async function readDurable(realPath: string, fs: WriteFs = fsp): Promise<StateTable> {
  for (;;) {
    const loaded = await loadCheckpoint(realPath, realPath, fs as LoadFs, false);
    const apply = (id: string, value: number) => void loaded.values.set(id, value);
    try {
      for (const generation of await listGenerations(realPath, fs)) {
        const parser = new JournalParser(apply);
        const file = await fs.open(journalPath(realPath, generation), 'r');
        try {
          parser.push(await file.readFile());
        } finally {
          await file.close();
        }
      }
      return loaded.values;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
