import { createHash } from 'node:crypto';

/**
 * Key layout: one hash per id, `parity:{<id>}`. The braces are Redis Cluster's hash tag, so
 * everything a claim or a write touches is one key in one slot, and every script is single-key.
 * Ids are [A-Za-z0-9_.-]{1,64} (checked by the protocol), so they never contain a brace.
 *
 * Fields: `value` (0-99, absent until the first write), `epoch` (claims of this id so far),
 * `token` (the current holder's fencing token) and `seq` (the newest write of that holder applied).
 */
export const ID_KEY_PREFIX = 'parity:{';
export const idKey = (id: string): string => `${ID_KEY_PREFIX}${id}}`;

const KEY_RE = /^parity:\{([A-Za-z0-9_.-]{1,64})\}$/;

/** The id a key belongs to, or null for a key that is not one of ours. */
export function idOfKey(key: string): string | null {
  return KEY_RE.exec(key)?.[1] ?? null;
}

/** Every claim is announced here as `<id> <epoch> <token>`, for the holders on other servers. */
export const TAKEOVER_CHANNEL = 'parity:takeover';

export type Script = { source: string; sha: string };

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * KEYS[1] the id's key; ARGV: token, maxIds, channel, id.
 * A new id (no key yet) is refused when the database already holds maxIds keys: DBSIZE, read in
 * the same atomic step, so two servers cannot both take the last place. Otherwise the epoch goes up,
 * the token becomes the caller's (its writes from now on are the only ones applied), the claim is
 * announced, and the value is returned.
 * Reply: {0, size} when full, {1, size, epoch, value}.
 */
export const CLAIM = script(`
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  local size = redis.call('DBSIZE')
  if size >= tonumber(ARGV[2]) then return {0, size} end
end
local epoch = redis.call('HINCRBY', key, 'epoch', 1)
redis.call('HSET', key, 'token', ARGV[1], 'seq', '0')
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. epoch .. ' ' .. ARGV[1])
local value = redis.call('HGET', key, 'value')
return {1, redis.call('DBSIZE'), epoch, tonumber(value or '0')}
`);

/**
 * KEYS[1] the id's key; ARGV: token, value, seq.
 * Applied only if the caller's claim is still the current one (its token), and only if no newer
 * write of the same claim was applied first: `seq` grows with every write a server sends, so a
 * write that a dropped connection delivered late can never replace a newer acknowledged one.
 * A write never creates a key (the claim did), so it never meets the id limit.
 * Reply: {1, size} stored, {0, epoch, token} taken over (the current claim), {2} older than the
 * holder's last applied write.
 */
export const SET = script(`
local key = KEYS[1]
local held = redis.call('HMGET', key, 'token', 'seq', 'epoch')
if held[1] ~= ARGV[1] then return {0, tonumber(held[3] or '0'), held[1] or ''} end
if tonumber(held[2] or '0') >= tonumber(ARGV[3]) then return {2} end
redis.call('HSET', key, 'value', ARGV[2], 'seq', ARGV[3])
return {1, redis.call('DBSIZE')}
`);

export type ClaimReply =
  { kind: 'full'; size: number } | { kind: 'claimed'; size: number; epoch: number; value: number };

export type SetReply =
  | { kind: 'stored'; size: number }
  | { kind: 'taken'; epoch: number; token: string }
  | { kind: 'stale' };

/** A reply that is not what the script returns: a storage failure, never a guess. */
export class ScriptReplyError extends Error {
  readonly code = 'EBADREPLY';
  constructor(reply: unknown) {
    super(`unexpected reply from a Parity script: ${JSON.stringify(reply)}`.slice(0, 200));
  }
}

const int = (x: unknown, reply: unknown): number => {
  if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new ScriptReplyError(reply);
  return x;
};

export function parseClaimReply(reply: unknown): ClaimReply {
  if (!Array.isArray(reply)) throw new ScriptReplyError(reply);
  if (reply[0] === 0 && reply.length === 2) return { kind: 'full', size: int(reply[1], reply) };
  if (reply[0] === 1 && reply.length === 4) {
    const [, size, epoch, value] = reply as unknown[];
    return {
      kind: 'claimed',
      size: int(size, reply),
      epoch: int(epoch, reply),
      value: int(value, reply),
    };
  }
  throw new ScriptReplyError(reply);
}

export function parseSetReply(reply: unknown): SetReply {
  if (!Array.isArray(reply)) throw new ScriptReplyError(reply);
  if (reply[0] === 1 && reply.length === 2) return { kind: 'stored', size: int(reply[1], reply) };
  if (reply[0] === 0 && reply.length === 3 && typeof reply[2] === 'string')
    return { kind: 'taken', epoch: int(reply[1], reply), token: reply[2] };
  if (reply[0] === 2 && reply.length === 1) return { kind: 'stale' };
  throw new ScriptReplyError(reply);
}

export type Announcement = { id: string; epoch: number; token: string };

/** `<id> <epoch> <token>` as CLAIM publishes it; null for anything else. */
export function parseAnnouncement(message: string): Announcement | null {
  const m = /^([A-Za-z0-9_.-]{1,64}) ([1-9][0-9]{0,15}) (.+)$/.exec(message);
  return m === null ? null : { id: m[1]!, epoch: Number(m[2]), token: m[3]! };
}
