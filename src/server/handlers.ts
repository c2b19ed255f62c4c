import { randomInt, type Random } from '../clock.js';
import { formatReply, type Reply } from '../protocol/replies.js';
import { HELP_TEXT, type Request, type Verb } from '../protocol/requests.js';
import type { Store } from '../store/store.js';
import type { AuthSession, ConnectionAuth } from './auth.js';

/** What a handler may see and do of its connection. */
export interface Session extends AuthSession {
  readonly id: string | null;
  readonly store: Store;
  readonly random: Random;
  /** Most ids the store may hold; a new id past it is refused. */
  readonly maxIds: number;
  /** Makes this connection `id`, taking the id over from any other connection. */
  claim(id: string): void;
  /** Stops reading; the connection closes after this request's reply. */
  quit(): void;
  /** With a users file: this connection's AUTH state, which gates HELLO and VALUE (auth.ts). */
  readonly auth?: ConnectionAuth | null;
}

type Handler<V extends Verb> = (
  session: Session,
  request: Extract<Request, { verb: V }>,
) => Reply | Promise<Reply>;

const storageError =
  (what: string) =>
  (err: unknown): Reply => ({
    kind: 'ERR',
    code: 'STORAGE',
    text: `${what} could not be made durable (${(err as NodeJS.ErrnoException).code ?? 'error'}); not acknowledged`,
  });

/** A new id would take the store past its cap (`--max-ids`); known ids always work. */
function overIdLimit(session: Session, id: string): Reply | null {
  if (session.store.has(id) || session.store.size < session.maxIds) return null;
  return {
    kind: 'ERR',
    code: 'ID_LIMIT',
    text: `the server holds its maximum of ${session.maxIds} ids; use a known id`,
  };
}

/** One small handler per verb; the connection only queues what they return. */
export const HANDLERS: { [V in Verb]: Handler<V> } = {
  HELLO(session, { id }) {
    if (session.id !== null && session.id !== id) {
      return { kind: 'ERR', code: 'ALREADY_IDENTIFIED', text: `this connection is ${session.id}` };
    }
    if (session.id === null) {
      const refused = overIdLimit(session, id);
      if (refused !== null) return refused;
      session.claim(id);
    }
    // Read now, so the reply reflects exactly the requests that arrived before this one; sent once
    // every change so far (including a taken-over connection's last values) is durable.
    const value = session.store.get(id);
    return session.store
      .sync()
      .then((): Reply => ({ kind: 'VALUE', value }), storageError('the value'));
  },
  VALUE(session, { value }) {
    if (session.id === null) {
      return { kind: 'ERR', code: 'NOT_IDENTIFIED', text: 'say HELLO <id> first' };
    }
    // Checked again here: ids are stored by VALUE, and other new ids may have filled the store
    // since this connection's HELLO.
    const refused = overIdLimit(session, session.id);
    if (refused !== null) return refused;
    return session.store
      .set(session.id, value)
      .then((): Reply => ({ kind: 'OK', value }), storageError(`${value}`));
  },
  EVEN: (session) => ({ kind: 'EVEN', value: 2 * randomInt(session.random, 50) }),
  ODD: (session) => ({ kind: 'ODD', value: 2 * randomInt(session.random, 50) + 1 }),
  PING: () => ({ kind: 'PONG' }),
  HELP: () => ({ kind: 'HELP', text: HELP_TEXT }),
  QUIT(session) {
    session.quit();
    return { kind: 'BYE', code: null, text: '' };
  },
  AUTH: (session, { id, password }) =>
    session.auth?.authenticate(session, id, password) ?? {
      kind: 'ERR',
      code: 'AUTH_DISABLED',
      text: 'this server has no users; say HELLO <id>',
    },
};

/** Runs the request's handler; the reply comes back as its wire line (no LF). */
export function handle(session: Session, request: Request): string | Promise<string> {
  const run = () => (HANDLERS[request.verb] as Handler<Verb>)(session, request as never);
  const reply = session.auth ? session.auth.guard(request, run) : run();
  return reply instanceof Promise ? reply.then(formatReply) : formatReply(reply);
}
