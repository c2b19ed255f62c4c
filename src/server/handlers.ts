import { randomInt, type Random } from '../clock.js';
import { formatReply, type Reply } from '../protocol/replies.js';
import { HELP_TEXT, type Request, type Verb } from '../protocol/requests.js';
import { MAX_VALUE } from '../protocol/syntax.js';
import {
  IdLimitError,
  TakenOverError,
  type Holder,
  type ValueStore,
} from '../store/value-store.js';
import type { AuthSession, ConnectionAuth } from './auth.js';
import { Pending, type Answer } from './pending.js';

/** What a handler may see and do of its connection. */
export interface Session extends AuthSession, Holder {
  readonly id: string | null;
  readonly store: ValueStore;
  readonly random: Random;
  /**
   * Makes this connection `id` at once (later requests see it), taking the id over from any
   * other connection; resolves with the id's durable value. If the store refuses the id, the
   * connection is no longer `id`.
   */
  claim(id: string): Promise<number>;
  /**
   * While the first claim waits for a store that answers later (Redis), the connection is already
   * its id; this settles once the store answered, and `refusedClaim` then says if it refused.
   */
  readonly tentative: Promise<void> | null;
  readonly refusedClaim: IdLimitError | null;
  /** A HELLO waiting for `tentative`: HELLO and VALUE after it run once it is answered. */
  readonly heldIdentity: Promise<void> | null;
  holdIdentity(until: Promise<unknown>): void;
  /** Stops reading; the connection closes after this request's reply. */
  quit(): void;
  /** With a users file: this connection's AUTH state, which gates HELLO and VALUE (auth.ts). */
  readonly auth?: ConnectionAuth | null;
}

type Handler<V extends Verb> = (
  session: Session,
  request: Extract<Request, { verb: V }>,
) => Answer | Promise<Answer>;

/** What a refused claim or write is answered; `what` names what was not made durable. */
const refusal =
  (what: string) =>
  (err: unknown): Reply => {
    if (err instanceof IdLimitError) return { kind: 'ERR', code: 'ID_LIMIT', text: err.message };
    if (err instanceof TakenOverError)
      return { kind: 'ERR', code: 'TAKEN_OVER', text: `${err.message}; ${what} was not stored` };
    return {
      kind: 'ERR',
      code: 'STORAGE',
      text: `${what} could not be made durable (${(err as NodeJS.ErrnoException).code ?? 'error'}); not acknowledged`,
    };
  };

/** Per value (0-99), how a VALUE is answered, made once: a flood made two closures per request. */
const ANSWERS = Array.from({ length: MAX_VALUE + 1 }, (_, value) => ({
  ok: (): Reply => ({ kind: 'OK', value }),
  fail: refusal(`${value}`),
}));

/** One small handler per verb; the connection only queues what they return. */
export const HANDLERS: { [V in Verb]: Handler<V> } = {
  HELLO(session, { id }) {
    if (session.id !== null && session.id !== id) {
      const already: Reply = {
        kind: 'ERR',
        code: 'ALREADY_IDENTIFIED',
        text: `this connection is ${session.id}`,
      };
      if (session.tentative === null) return already;
      // Behind a first HELLO the store has not answered: if it refuses that one, this is a first.
      const after = session.tentative.then(() =>
        session.id === null
          ? session.claim(id).then((value): Reply => ({ kind: 'VALUE', value }))
          : already,
      );
      session.holdIdentity(after);
      return Pending.of(after, (reply) => reply, refusal('the value'));
    }
    // Claimed again by a repeated HELLO: the value reported includes every earlier request.
    return Pending.of(
      session.claim(id),
      (value): Reply => ({ kind: 'VALUE', value }),
      refusal('the value'),
    );
  },
  VALUE(session, { value }) {
    if (session.id === null) {
      return { kind: 'ERR', code: 'NOT_IDENTIFIED', text: 'say HELLO <id> first' };
    }
    const answer = ANSWERS[value]!;
    const written = session.store.set(session.id, session, value);
    if (session.tentative === null) return Pending.of(written, answer.ok, answer.fail);
    // Behind a first HELLO the store then refused: refused for the same reason, not TAKEN_OVER.
    return Pending.of(written, answer.ok, (err) =>
      answer.fail(err instanceof TakenOverError ? (session.refusedClaim ?? err) : err),
    );
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

/**
 * Runs the request's handler: a reply ready now comes back as its wire line (no LF), a later one as
 * a Pending for the reply queue.
 */
export function handle(session: Session, request: Request): string | Pending {
  const now = () => (HANDLERS[request.verb] as Handler<Verb>)(session, request as never);
  // Behind a HELLO that waits to know if the first one was refused, a VALUE is for the id that
  // HELLO claims, and another HELLO comes after it: both wait for it, in order.
  const held = session.heldIdentity;
  const run =
    held !== null && (request.verb === 'HELLO' || request.verb === 'VALUE')
      ? () => held.then(now)
      : now;
  const reply = session.auth ? session.auth.guard(request, run) : run();
  if (reply instanceof Pending) return reply;
  if (reply instanceof Promise) return Pending.of(reply.then(settled), (r: Reply) => r, rethrow);
  return formatReply(reply);
}

/** An AUTH verdict, or a request that waited for one: the Pending it resolved to, settled. */
const settled = (reply: Answer): Reply | Promise<Reply> =>
  reply instanceof Pending ? reply.after.then(reply.ok, reply.fail) : reply;

/** Nothing behind an AUTH rejects (a failed check is a reply): as before, a bug is not hidden. */
const rethrow = (err: unknown): never => {
  throw err;
};
