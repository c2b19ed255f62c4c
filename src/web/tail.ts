import { clockMs } from './format.js';

/** Lines the page keeps; older ones are removed from the list. */
const KEEP = 300;

type LogRecord = {
  time?: number;
  conn?: number;
  id?: string;
  dir?: 'in' | 'out';
  line?: string;
  blank?: number;
  event?: string;
  reason?: string;
  remote?: string;
};

function describe(r: LogRecord): { kind: string; text: string } {
  if (r.dir !== undefined) {
    const text = r.blank !== undefined ? `(${r.blank} blank lines)` : (r.line ?? '');
    return { kind: r.dir, text: `${r.dir === 'in' ? '→' : '←'} ${text}` };
  }
  const detail = [r.remote, r.reason].filter((x) => x !== undefined).join(' ');
  return { kind: 'event', text: `${r.event ?? 'record'} ${detail}` };
}

/** The message-log tail: a sample of records, paused on demand. */
export class Tail {
  readonly #list: HTMLOListElement;
  readonly #pauseButton: HTMLButtonElement;
  #paused = false;
  #held = 0;

  constructor(list: HTMLOListElement, pauseButton: HTMLButtonElement) {
    this.#list = list;
    this.#pauseButton = pauseButton;
    pauseButton.addEventListener('click', () => this.#toggle());
  }

  clear(): void {
    this.#list.replaceChildren();
  }

  add(records: string[], skipped: number): void {
    if (this.#paused) {
      this.#held += records.length + skipped;
      this.#pauseButton.textContent = `resume (${this.#held} lines not shown)`;
      return;
    }
    const atBottom = this.#list.scrollTop + this.#list.clientHeight >= this.#list.scrollHeight - 4;
    if (skipped > 0) this.#item('skipped', `… ${skipped} lines skipped`);
    for (const text of records) {
      let r: LogRecord;
      try {
        r = JSON.parse(text) as LogRecord;
      } catch {
        continue;
      }
      const { kind, text: line } = describe(r);
      const when = r.time === undefined ? '' : clockMs(r.time);
      const meta = `${when} #${r.conn ?? '?'}${r.id === undefined ? '' : ` ${r.id}`}`;
      this.#item(kind, line, meta);
    }
    while (this.#list.children.length > KEEP) this.#list.firstElementChild?.remove();
    if (atBottom) this.#list.scrollTop = this.#list.scrollHeight;
  }

  /** Peer input reaches the page only through textContent: `<b>x</b>` shows as those characters. */
  #item(kind: string, text: string, meta?: string): void {
    const li = document.createElement('li');
    li.className = kind;
    if (meta !== undefined) {
      const span = document.createElement('span');
      span.className = 'meta';
      span.textContent = meta;
      li.append(span);
    }
    const line = document.createElement('span');
    line.className = 'line';
    line.textContent = text;
    li.append(line);
    this.#list.append(li);
  }

  #toggle(): void {
    this.#paused = !this.#paused;
    this.#held = 0;
    this.#pauseButton.textContent = this.#paused ? 'resume' : 'pause';
    this.#pauseButton.setAttribute('aria-pressed', String(this.#paused));
  }
}
