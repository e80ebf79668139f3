import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { call, seedTeam, seedUser } from "../../test/harness.ts";
import { db } from "../../test/db.ts";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { apiTokens, auditLogs, users } from "../db/schema.ts";
import { deriveHmacKey, hmacSha256Hex } from "../lib/crypto.ts";
import { STATE_KEY_INFO } from "./github-oauth.ts";

const callbackUrl = "https://stagely.test/v1/auth/github/callback";
let githubIds = 1000;

async function startLogin() {
  const response = await call("GET", "/v1/auth/github");
  const location = new URL(response.headers.get("location")!);
  const cookie = /stagely_oauth_state=([^;]+)/.exec(response.headers.get("set-cookie") ?? "")?.[1];
  return { response, location, state: location.searchParams.get("state")!, cookie: cookie! };
}

interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility: string | null;
}

async function approve(user: { id: number; login: string; name?: string }, emails: GitHubEmail[] = [{ email: `${user.login}@example.test`, primary: true, verified: true, visibility: "private" }]) {
  const response = await fetch(`${fakeUrl("github")}/_fake/oauth/grant`, {
    method: "POST",
    body: JSON.stringify({ user: { avatar_url: null, name: null, ...user }, emails, redirect_uri: callbackUrl }),
  });
  return ((await response.json()) as { code: string }).code;
}

async function signIn(user: { id: number; login: string; name?: string }, emails?: Parameters<typeof approve>[1]) {
  const { state, cookie } = await startLogin();
  const code = await approve(user, emails);
  return { ...(await call("GET", `/v1/auth/github/callback?code=${code}&state=${state}`, { headers: { Cookie: `stagely_oauth_state=${cookie}` } })), code, state, cookie };
}

describe("GitHub sign-in", () => {
  it("redirects to GitHub with the client id, callback, scopes and a state bound to a cookie", async () => {
    const { response, location, cookie } = await startLogin();
    expect(response.status).toBe(302);
    expect(`${location.origin}${location.pathname}`).toBe(`${fakeUrl("github")}/login/oauth/authorize`);
    expect(location.searchParams.get("client_id")).toBe(env.GITHUB_CLIENT_ID);
    expect(location.searchParams.get("redirect_uri")).toBe(callbackUrl);
    expect(location.searchParams.get("scope")).toBe("read:user user:email");
    expect(location.searchParams.get("state")!.startsWith(`${cookie}.`)).toBe(true);
    expect(response.headers.get("set-cookie")).toMatch(/HttpOnly/i);
  });

  it("creates the user from GitHub, records the login and returns a working session token", async () => {
    const id = githubIds++;
    const result = await signIn({ id, login: `octo${id}`, name: "Octo Cat" });
    expect(result.status, result.text).toBe(200);
    expect(result.body).toMatchObject({ token_type: "Bearer", user: { email: `octo${id}@example.test`, github_login: `octo${id}`, name: "Octo Cat" } });
    expect(result.body.token).toMatch(/^stg_ses_[0-9A-Za-z]{32}$/);
    expect(result.headers.get("cache-control")).toBe("no-store");
    const [user] = await db.select().from(users).where(eq(users.githubId, id));
    expect(user!.lastLoginAt).not.toBeNull();
    expect(user!.emailVerified).toBe(true);
    const me = await call("GET", "/v1/me", { token: result.body.token });
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(user!.id);
    expect(await db.select().from(auditLogs).where(eq(auditLogs.actorId, user!.id))).toEqual([expect.objectContaining({ action: "user.logged_in" })]);
  });

  it("finds a returning user by GitHub id and links an existing account by email", async () => {
    const existing = await seedUser({ email: "linkme@example.test" });
    const id = githubIds++;
    const first = await signIn({ id, login: "linkme" }, [
      { email: "other@example.test", primary: false, verified: true, visibility: null },
      { email: "LinkMe@example.test", primary: true, verified: true, visibility: null },
    ]);
    expect(first.status, first.text).toBe(200);
    expect(first.body.user.id).toBe(existing.id);
    const again = await signIn({ id, login: "linkme-renamed" });
    expect(again.body.user).toMatchObject({ id: existing.id, github_login: "linkme-renamed" });
  });

  it("refuses a reused code, a forged or foreign state, and an account without a verified primary email", async () => {
    const id = githubIds++;
    const done = await signIn({ id, login: `reuse${id}` });
    const sessions = async () => (await db.select().from(apiTokens).where(eq(apiTokens.kind, "session"))).length;
    const before = await sessions();

    const reused = await call("GET", `/v1/auth/github/callback?code=${done.code}&state=${done.state}`, { headers: { Cookie: `stagely_oauth_state=${done.cookie}` } });
    expect(reused.status).toBe(401);
    expect(reused.body.error.message).toMatch(/expired or already used/);

    const { state, cookie } = await startLogin();
    const code = await approve({ id, login: `reuse${id}` });
    const forged = `${state.slice(0, -4)}0000`;
    expect((await call("GET", `/v1/auth/github/callback?code=${code}&state=${forged}`, { headers: { Cookie: `stagely_oauth_state=${cookie}` } })).status).toBe(401);
    const noCookie = await call("GET", `/v1/auth/github/callback?code=${code}&state=${state}`);
    expect(noCookie.status).toBe(401);
    expect(noCookie.body.error.message).toMatch(/not started from this browser/);

    const nonce = "ab".repeat(16);
    const past = Math.floor(Date.now() / 1000) - 1;
    const stateKey = await deriveHmacKey(env.ENCRYPTION_KEY, STATE_KEY_INFO);
    const expired = `${nonce}.${past}.${await hmacSha256Hex(stateKey, `${nonce}.${past}`)}`;
    const late = await call("GET", `/v1/auth/github/callback?code=${code}&state=${expired}`, { headers: { Cookie: `stagely_oauth_state=${nonce}` } });
    expect(late.status).toBe(401);
    expect(late.body.error.message).toMatch(/took too long/);

    const unverified = await signIn({ id: githubIds++, login: "unverified" }, [{ email: "u@example.test", primary: true, verified: false, visibility: null }]);
    expect(unverified.status).toBe(422);
    expect(await sessions()).toBe(before);
  });

  it("signs states with a key derived by HKDF, not with a string made from the encryption key", async () => {
    const nonce = "cd".repeat(16);
    const expires = Math.floor(Date.now() / 1000) + 300;
    const code = await approve({ id: githubIds++, login: "derived" });
    const signedWith = async (key: CryptoKey | string) => `${nonce}.${expires}.${await hmacSha256Hex(key, `${nonce}.${expires}`)}`;
    const callback = async (state: string) => call("GET", `/v1/auth/github/callback?code=${code}&state=${state}`, { headers: { Cookie: `stagely_oauth_state=${nonce}` } });

    const oldDerivation = await callback(await signedWith(`oauth-state:${env.ENCRYPTION_KEY}`));
    expect(oldDerivation.status).toBe(401);
    expect(oldDerivation.body.error.message).toMatch(/invalid sign-in state/);
    const derived = await callback(await signedWith(await deriveHmacKey(env.ENCRYPTION_KEY, STATE_KEY_INFO)));
    expect(derived.status, derived.text).toBe(200);
  });

  it("reports a wrong client secret as a server misconfiguration, without echoing the secret", async () => {
    const { default: worker } = await import("../index.ts");
    const { createExecutionContext } = await import("cloudflare:test");
    const { state, cookie } = await startLogin();
    const code = await approve({ id: githubIds++, login: "secretcheck" });
    const response = await worker.fetch(
      new Request(`https://stagely.test/v1/auth/github/callback?code=${code}&state=${state}`, { headers: { Cookie: `stagely_oauth_state=${cookie}` } }),
      { ...env, GITHUB_CLIENT_SECRET: "not-the-right-secret" },
      createExecutionContext(),
    );
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(text).toContain("incorrect_client_credentials");
    expect(text).not.toContain("not-the-right-secret");
  });
});

describe("API tokens, /v1/me and logout", () => {
  it("creates a token shown once, lists it without its value, and revokes it", async () => {
    const user = await seedUser();
    const team = await seedTeam([{ user, role: "admin" }]);
    const created = await call("POST", "/v1/tokens", { token: user.token, body: { name: "ci", expires_in_days: 30 } });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^stg_pat_/);
    expect(created.body.token_hint).toBe(`${created.body.token.slice(0, 12)}…`);
    expect(new Date(created.body.expires_at).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);

    const me = await call("GET", "/v1/me", { token: created.body.token });
    expect(me.body.teams).toEqual([{ id: team.id, slug: team.slug, role: "admin" }]);

    const list = await call("GET", "/v1/tokens", { token: user.token });
    expect(list.body.data.map((t: { id: string }) => t.id)).toContain(created.body.id);
    expect(list.text).not.toContain(created.body.token);

    expect((await call("DELETE", `/v1/tokens/${created.body.id}`, { token: user.token })).status).toBe(204);
    expect((await call("GET", "/v1/me", { token: created.body.token })).status).toBe(401);
    expect((await call("DELETE", `/v1/tokens/${created.body.id}`, { token: user.token })).status).toBe(404);
  });

  it("never lets one user revoke another's token", async () => {
    const [alice, bob] = [await seedUser(), await seedUser()];
    const created = await call("POST", "/v1/tokens", { token: alice.token, body: { name: "mine" } });
    expect((await call("DELETE", `/v1/tokens/${created.body.id}`, { token: bob.token })).status).toBe(404);
    expect((await call("GET", "/v1/me", { token: created.body.token })).status).toBe(200);
  });

  it("rejects bad input with 400 and creates nothing", async () => {
    const user = await seedUser();
    const count = async () => (await db.select().from(apiTokens).where(eq(apiTokens.userId, user.id))).length;
    const before = await count();
    for (const body of [{ name: "" }, { name: "x", expires_in_days: 0 }, { name: "x", extra: true }, "not json"]) {
      const response = await call("POST", "/v1/tokens", { token: user.token, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
    expect(await count()).toBe(before);
  });

  it("refuses expired, revoked, malformed and unknown tokens with 401", async () => {
    const user = await seedUser();
    const created = await call("POST", "/v1/tokens", { token: user.token, body: { name: "short" } });
    await db.update(apiTokens).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(apiTokens.id, created.body.id));
    expect((await call("GET", "/v1/me", { token: created.body.token })).body.error.message).toBe("token expired");
    expect((await call("GET", "/v1/me", { token: "stg_pat_" + "x".repeat(32) })).status).toBe(401);
    expect((await call("GET", "/v1/me", { headers: { Authorization: "Basic abc" } })).status).toBe(401);
    expect((await call("GET", "/v1/me", { token: "not-a-token" })).status).toBe(401);
  });

  it("logs out by revoking the token used", async () => {
    const user = await seedUser();
    expect((await call("POST", "/v1/auth/logout", { token: user.token })).status).toBe(204);
    expect((await call("GET", "/v1/me", { token: user.token })).status).toBe(401);
  });
});
