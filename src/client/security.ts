import type { Reply } from '../protocol/replies.js';

/**
 * ERR replies about AUTH after which reconnecting cannot help: a wrong password stays wrong, a
 * server that needs one will not stop needing it, and one without users means the client is
 * configured for another server. The client exits (EXIT.fatal) instead of retrying; retrying a
 * wrong password would also walk into the server's slow-down.
 */
export const FATAL_AUTH_CODES: ReadonlySet<string> = new Set([
  'AUTH_FAILED',
  'AUTH_REQUIRED',
  'FORBIDDEN',
  'AUTH_DISABLED',
]);

export function isFatalAuthReply(reply: Reply): boolean {
  return reply.kind === 'ERR' && FATAL_AUTH_CODES.has(reply.code);
}
