import { parseReply } from '../protocol/replies.js';
import { parseRequest } from '../protocol/requests.js';

/** One record of the server's message log (pino JSON): see protocol.md and src/log. */
export type LogRecord = Record<string, unknown>;

export type AuditOptions = {
  /** The EVEN/ODD window, with slack for timer lateness and a busy event loop at either end. */
  minMs: number;
  maxMs: number;
  earlyMs: number;
  lateMs: number;
  /**
   * How long a reply may take to reach the client. A VALUE read later than this after an EVEN/ODD
   * reply was written must use that reply's increment (or a newer one); before, the old one is fine.
   */
  graceMs: number;
};

/** What one client connection did, as the server saw it, and every rule it broke. */
export type ConnectionAudit = {
  conn: number;
  /** The server that wrote the log (its records' `node`), when there are several. */
  node: string | null;
  id: string | null;
  /** The value of the HELLO reply, then of each VALUE sent. */
  last: number | null;
  values: number;
  switches: number;
  /** Milliseconds between consecutive VALUE requests. */
  tickGaps: number[];
  problems: string[];
  /** The first HELLO reply's value and when it was written; null if none was. */
  helloValue: number | null;
  helloAt: number;
  /** The last value acknowledged (OK), and the values sent since without an OK. */
  lastOk: number | null;
  sentSinceOk: number[];
  /** Whether the log has the connection's `close` record (a server killed mid-way wrote none). */
  closed: boolean;
};

type Open = {
  audit: ConnectionAudit;
  counter: number | null;
  /** Increments the client may be using: 1, then each EVEN/ODD reply sent (and when), in order. */
  increments: Array<{ value: number; at: number }>;
  used: number;
  lastSwitchAt: number;
  lastValueAt: number | null;
};

/**
 * Replays a server message log and checks the client rules on every connection: each VALUE is
 * counter + increment mod 100, the counter starting at the HELLO reply with increment 1 and the
 * increment being the number of an EVEN/ODD reply; and each EVEN/ODD comes within the window after
 * the previous one (or the HELLO reply). The log is in causal order (requests are logged when read,
 * replies when written), so a reply logged just before a VALUE may not have reached the client yet;
 * the replay accepts the old increment for graceMs, and never one older than one already used.
 */
export function auditLog(records: LogRecord[], window: AuditOptions): ConnectionAudit[] {
  const done: ConnectionAudit[] = [];
  const open = new Map<number, Open>();
  for (const r of records) {
    const conn = r['conn'];
    if (typeof conn !== 'number') continue;
    let a = open.get(conn);
    // Connection numbers restart with the server, so an `open` record always starts afresh.
    if (a === undefined || r['event'] === 'open') {
      a = fresh(conn, typeof r['node'] === 'string' ? r['node'] : null);
      open.set(conn, a);
      done.push(a.audit);
    }
    if (r['event'] === 'close') a.audit.closed = true;
    const time = Number(r['time']);
    const line = typeof r['line'] === 'string' ? r['line'] : '';
    if (r['dir'] === 'in') request(a, line, time, window);
    else if (r['dir'] === 'out') reply(a, line, time);
  }
  return done.filter((a) => a.id !== null);
}

function fresh(conn: number, node: string | null): Open {
  const audit: ConnectionAudit = {
    conn,
    node,
    id: null,
    last: null,
    values: 0,
    switches: 0,
    tickGaps: [],
    problems: [],
    helloValue: null,
    helloAt: 0,
    lastOk: null,
    sentSinceOk: [],
    closed: false,
  };
  const increments = [{ value: 1, at: -Infinity }];
  return { audit, counter: null, increments, used: 0, lastSwitchAt: 0, lastValueAt: null };
}

function request(a: Open, line: string, time: number, w: AuditOptions): void {
  const parsed = parseRequest(line);
  if (parsed.type !== 'request') return;
  const req = parsed.request;
  const audit = a.audit;
  if (req.verb === 'HELLO') audit.id = req.id;
  if (req.verb === 'EVEN' || req.verb === 'ODD') {
    audit.switches++;
    const gap = time - a.lastSwitchAt;
    if (gap < w.minMs - w.earlyMs || gap > w.maxMs + w.lateMs) {
      audit.problems.push(
        `${req.verb} ${gap} ms after the previous switch, outside [${w.minMs}, ${w.maxMs}]`,
      );
    }
    a.lastSwitchAt = time;
  }
  if (req.verb !== 'VALUE') return;
  audit.values++;
  audit.sentSinceOk.push(req.value);
  if (a.lastValueAt !== null) audit.tickGaps.push(time - a.lastValueAt);
  a.lastValueAt = time;
  const counter = a.counter;
  a.counter = audit.last = req.value;
  if (counter === null) {
    audit.problems.push(`VALUE ${req.value} before the HELLO reply`);
    return;
  }
  // Replies written more than graceMs ago have reached the client: it may not use anything older.
  let from = a.used;
  for (let i = from; i < a.increments.length; i++) {
    if (a.increments[i]!.at + w.graceMs < time) from = i;
  }
  const j = a.increments.findIndex(
    (inc, i) => i >= from && (counter + inc.value) % 100 === req.value,
  );
  if (j === -1) {
    const allowed = a.increments.slice(from).map((inc) => inc.value);
    audit.problems.push(
      `VALUE ${req.value} after ${counter}: not ${counter} + (${allowed.join(' or ')}) mod 100`,
    );
  } else a.used = j;
}

function reply(a: Open, line: string, time: number): void {
  const parsed = parseReply(line);
  if (parsed?.kind === 'OK') {
    a.audit.lastOk = parsed.value;
    a.audit.sentSinceOk = [];
  }
  if (parsed?.kind === 'VALUE' && a.audit.helloValue === null) {
    a.audit.helloValue = parsed.value;
    a.audit.helloAt = time;
  }
  if (parsed?.kind === 'VALUE') {
    a.counter = a.audit.last = parsed.value;
    a.increments = [{ value: 1, at: -Infinity }];
    a.used = 0;
    a.lastSwitchAt = time;
  } else if (parsed?.kind === 'EVEN' || parsed?.kind === 'ODD') {
    a.increments.push({ value: parsed.value, at: time });
  }
}

/**
 * Several servers' logs (servers sharing a Redis store): each connection as auditLog checks it,
 * and then each id's connections in the order of their HELLO replies, across servers (two in one
 * millisecond on different servers in the order their values agree with: orderTies). A client
 * that moved on (to another connection, on this server or another) must be given the value it
 * last had acknowledged, or one it sent after that without an answer (which may have been stored);
 * anything else is a lost value, added to the later connection's problems. A connection whose
 * log ends without its `close` record (its server was killed) is not held to this: what that
 * server did last, its log may not have kept (only the request line of an OK is promised there).
 */
export function auditLogs(logs: LogRecord[][], window: AuditOptions): ConnectionAudit[] {
  const all = logs.flatMap((records) => auditLog(records, window));
  const byId = new Map<string, ConnectionAudit[]>();
  for (const a of all) {
    if (a.helloValue === null) continue;
    const list = byId.get(a.id!) ?? [];
    list.push(a);
    byId.set(a.id!, list);
  }
  for (const sessions of byId.values()) {
    sessions.sort((x, y) => x.helloAt - y.helloAt);
    orderTies(sessions);
    for (let i = 1; i < sessions.length; i++) {
      const before = sessions[i - 1]!;
      const now = sessions[i]!;
      if (lost(before, now)) {
        const from = before.node === null ? `connection ${before.conn}` : before.node;
        now.problems.push(
          `HELLO got ${now.helloValue} after ${from} had ${before.lastOk ?? before.helloValue} acknowledged: a value was lost`,
        );
      }
    }
  }
  return all;
}

/** Whether `now`'s HELLO lost a value `before` (the id's previous connection) had stored. */
function lost(before: ConnectionAudit | undefined, now: ConnectionAudit | undefined): boolean {
  if (before === undefined || now === undefined || !before.closed) return false;
  const allowed = [before.lastOk ?? before.helloValue!, ...before.sentSinceOk];
  return !allowed.includes(now.helloValue!);
}

/**
 * A record's time is epoch ms, so two servers' HELLO replies in the same millisecond are not
 * ordered by the logs. Each such pair (sorted by time, a stable sort that keeps one server's log
 * order) is swapped if the swap explains more of the id's values: the audit reports only a loss
 * that no order of the records allows.
 */
function orderTies(sessions: ConnectionAudit[]): void {
  for (let i = 1; i < sessions.length; i++) {
    const [x, y] = [sessions[i - 1]!, sessions[i]!];
    if (x.helloAt !== y.helloAt || x.node === y.node) continue;
    const [before, after] = [sessions[i - 2], sessions[i + 1]];
    const losses = (a: ConnectionAudit, b: ConnectionAudit) =>
      Number(lost(before, a)) + Number(lost(a, b)) + Number(lost(b, after));
    if (losses(y, x) < losses(x, y)) [sessions[i - 1], sessions[i]] = [y, x];
  }
}
