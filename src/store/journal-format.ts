import { crc32 } from 'node:zlib';

/**
 * The journal's record format, pure (bytes in, records out; no I/O). One record per line:
 *
 *     alice 42 6b3f5a0e\n
 *
 * the id, the value, and the CRC-32 of `id value` in 8 hex digits. A line is a record only if it is
 * complete (ends in LF), matches this shape and its checksum: a write torn anywhere (a short write,
 * a crash between pages, zeros where the file grew but its data never landed) leaves a last line
 * that fails one of the three. Lines rather than binary length+checksum frames so that `cat`,
 * `grep alice` and `tail` read the journal like the state file; ids are [A-Za-z0-9_.-] and values
 * 0-99, so a record needs no escaping and is at most 77 bytes.
 */
const RECORD_RE = /^([A-Za-z0-9_.-]{1,64}) (0|[1-9][0-9]?) ([0-9a-f]{8})$/;
/** Longer than any record: a longer unfinished line is not a record (bounds what is held). */
const MAX_RECORD = 128;

function checksum(body: string): string {
  return crc32(body).toString(16).padStart(8, '0');
}

/** The bytes of these records, in order (a later record of an id wins at replay). */
export function encodeRecords(records: Iterable<[string, number]>): Buffer {
  let text = '';
  for (const [id, value] of records) {
    const body = `${id} ${value}`;
    text += `${body} ${checksum(body)}\n`;
  }
  return Buffer.from(text, 'latin1');
}

export type ParseEnd = {
  /** Bytes of whole, valid records from the start: where the journal is cut. */
  goodBytes: number;
  /** Bytes after them (a torn or corrupt tail), 0 for a clean journal. */
  cutBytes: number;
  records: number;
};

/**
 * Reads a journal in chunks split anywhere. Records up to the first line that is not a valid
 * record go to `onRecord`; that line and everything after it is the tail to cut. Everything after
 * a bad line is cut, even lines that look valid: one write may reach the disk out of order (a
 * later page before an earlier one), and no record of a torn write was acknowledged.
 */
export class JournalParser {
  #onRecord: (id: string, value: number) => void;
  #pending = '';
  #good = 0;
  #total = 0;
  #records = 0;
  #bad = false;

  constructor(onRecord: (id: string, value: number) => void) {
    this.#onRecord = onRecord;
  }

  push(chunk: Buffer): void {
    this.#total += chunk.length;
    if (this.#bad) return;
    // latin1: one char per byte, so string offsets are byte offsets (a valid record is ASCII).
    const all = this.#pending + chunk.toString('latin1');
    let from = 0;
    for (let nl = all.indexOf('\n'); nl !== -1; nl = all.indexOf('\n', from)) {
      const m = RECORD_RE.exec(all.slice(from, nl));
      if (m === null || checksum(`${m[1]} ${m[2]}`) !== m[3]) {
        this.#bad = true;
        this.#pending = '';
        return;
      }
      this.#onRecord(m[1]!, Number(m[2]));
      this.#records++;
      this.#good += nl + 1 - from;
      from = nl + 1;
    }
    this.#pending = all.slice(from);
    if (this.#pending.length > MAX_RECORD) {
      this.#bad = true;
      this.#pending = '';
    }
  }

  end(): ParseEnd {
    return { goodBytes: this.#good, cutBytes: this.#total - this.#good, records: this.#records };
  }
}
