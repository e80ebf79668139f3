import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { call, seedWorld } from "../../test/harness.ts";
import { db } from "../../test/db.ts";
import { apiTokens } from "../db/schema.ts";
import { AUTH_CACHE_TTL_MS, cachedAuth, forgetCachedAuth, rememberAuth } from "./auth-cache.ts";

const someAuth = {
  tokenId: "tok_cache_test",
  tokenKind: "api" as const,
  user: { id: "usr_cache_test", email: "cache@example.test", name: null, githubLogin: null },
  memberships: [],
};

describe("the verified-token cache", () => {
  it("keeps a verified token for at most 10 s, and never past the token's own expiry", () => {
    const now = 1_000_000;
    rememberAuth("hash-a", someAuth, null, now);
    expect(cachedAuth("hash-a", now + AUTH_CACHE_TTL_MS - 1)).toEqual(someAuth);
    expect(cachedAuth("hash-a", now + AUTH_CACHE_TTL_MS)).toBeUndefined();
    rememberAuth("hash-b", someAuth, now + 2_000, now);
    expect(cachedAuth("hash-b", now + 1_999)).toEqual(someAuth);
    expect(cachedAuth("hash-b", now + 2_000)).toBeUndefined();
    expect(AUTH_CACHE_TTL_MS).toBeLessThanOrEqual(10_000);
  });

  it("honours a revocation made elsewhere once the entry lapses, and one made through this isolate at once", async () => {
    const w = await seedWorld();
    expect((await call("GET", "/v1/me", { token: w.member.token })).status).toBe(200);
    // Revoked behind this isolate's back, as another isolate would: the cached verification still answers ...
    await db.update(apiTokens).set({ revokedAt: new Date() }).where(eq(apiTokens.userId, w.member.id));
    expect((await call("GET", "/v1/me", { token: w.member.token })).status).toBe(200);
    // ... until it lapses (at most AUTH_CACHE_TTL_MS); dropping the entries is what lapsing does.
    forgetCachedAuth();
    expect((await call("GET", "/v1/me", { token: w.member.token })).status).toBe(401);

    // Through the API the change applies to this isolate's next request.
    const created = await call("POST", "/v1/tokens", { token: w.viewer.token, body: { name: "second" } });
    expect(created.status, created.text).toBe(201);
    expect((await call("GET", "/v1/me", { token: created.body.token })).status).toBe(200);
    expect((await call("DELETE", `/v1/tokens/${created.body.id}`, { token: w.viewer.token })).status).toBe(204);
    expect((await call("GET", "/v1/me", { token: created.body.token })).status).toBe(401);
  });

  it("applies a lowered role and a removal on the next request", async () => {
    const w = await seedWorld();
    const rename = (name: string) => call("PATCH", `/v1/teams/${w.team.slug}`, { token: w.admin.token, body: { name } });
    expect((await rename("Before")).status).toBe(200);
    const lowered = await call("PATCH", `/v1/teams/${w.team.slug}/members/${w.admin.id}`, { token: w.owner.token, body: { role: "viewer" } });
    expect(lowered.status, lowered.text).toBe(200);
    expect((await rename("After")).status).toBe(403);
    expect((await call("GET", `/v1/teams/${w.team.slug}`, { token: w.admin.token })).status).toBe(200);
    expect((await call("DELETE", `/v1/teams/${w.team.slug}/members/${w.admin.id}`, { token: w.owner.token })).status).toBe(204);
    expect((await call("GET", `/v1/teams/${w.team.slug}`, { token: w.admin.token })).status).toBe(404);
  });
});
