import type { Auth } from "./middleware.ts";

/**
 * Verified tokens, kept in this isolate for at most AUTH_CACHE_TTL_MS so a steady stream of API reads costs one
 * database round trip (the data) instead of two (token, then data). The bound is the price: a token revoked, a
 * member removed or a role lowered through another isolate still works here for up to that long. Changes made
 * through this isolate call forgetCachedAuth() and apply at once. Keyed by the token's SHA-256, never the token.
 */
export const AUTH_CACHE_TTL_MS = 10_000;
const AUTH_CACHE_MAX_ENTRIES = 2_000;

const entries = new Map<string, { auth: Omit<Auth, "ip">; validUntil: number }>();

export function cachedAuth(tokenHash: string, now = Date.now()): Omit<Auth, "ip"> | undefined {
  const entry = entries.get(tokenHash);
  if (!entry) return undefined;
  if (entry.validUntil <= now) {
    entries.delete(tokenHash);
    return undefined;
  }
  return entry.auth;
}

/** `tokenExpiresAt`: the token's own expiry, which the cached entry never outlives. */
export function rememberAuth(tokenHash: string, auth: Omit<Auth, "ip">, tokenExpiresAt: number | null, now = Date.now()): void {
  if (entries.size >= AUTH_CACHE_MAX_ENTRIES) {
    for (const [hash, entry] of entries) if (entry.validUntil <= now) entries.delete(hash);
    // Still full of live entries: drop the oldest (Map keeps insertion order).
    if (entries.size >= AUTH_CACHE_MAX_ENTRIES) entries.delete(entries.keys().next().value!);
  }
  entries.set(tokenHash, { auth, validUntil: Math.min(now + AUTH_CACHE_TTL_MS, tokenExpiresAt ?? Number.POSITIVE_INFINITY) });
}

/** Called after a change to tokens, memberships, roles or teams, so this isolate's callers see it on their next request. */
export function forgetCachedAuth(): void {
  entries.clear();
}
