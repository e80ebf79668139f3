/**
 * The per-agent connect rate limit, a token bucket kept in the Durable Object's storage: `perMinute` connects at
 * once, then one every 60/perMinute seconds. A refused connect writes nothing, so a flood costs no storage writes.
 */
interface Bucket {
  tokens: number;
  at: number;
}

const KEY = "connectBucket";

export function takeConnectToken(kv: SyncKvStorage, perMinute: number, now = Date.now()): { ok: true } | { ok: false; retryAfterSeconds: number } {
  const bucket = kv.get<Bucket>(KEY) ?? { tokens: perMinute, at: now };
  const tokens = Math.min(perMinute, bucket.tokens + ((now - bucket.at) * perMinute) / 60_000);
  if (tokens < 1) return { ok: false, retryAfterSeconds: Math.ceil(((1 - tokens) * 60) / perMinute) };
  kv.put<Bucket>(KEY, { tokens: tokens - 1, at: now });
  return { ok: true };
}
