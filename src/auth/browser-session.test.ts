import { env } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { db } from "../../test/db.ts";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { call, seedTeam, seedUser } from "../../test/harness.ts";
import { apiTokens, auditLogs, teams } from "../db/schema.ts";
import { hmacSha256Hex } from "../lib/crypto.ts";
import { mintSignInLink } from "./sign-in-links.ts";

const origin = "https://stagely.test";
let githubIds = 50_000;

/** The cookies a response sets, by name (value "" for a deleted one). */
function cookiesOf(response: { headers: Headers }): Record<string, { value: string; attributes: string }> {
  const cookies: Record<string, { value: string; attributes: string }> = {};
  for (const header of response.headers.getSetCookie()) {
    const [pair = "", ...attributes] = header.split("; ");
    const [name = "", value = ""] = pair.split("=");
    cookies[name] = { value: decodeURIComponent(value), attributes: attributes.join("; ") };
  }
  return cookies;
}

/** A browser sign-in through the fake GitHub: start with return_to, approve, come back with both cookies. */
async function browserSignIn(returnTo: string) {
  const start = await call("GET", `/v1/auth/github?return_to=${encodeURIComponent(returnTo)}`);
  const started = cookiesOf(start);
  const state = new URL(start.headers.get("location")!).searchParams.get("state")!;
  const id = githubIds++;
  const grant = await fetch(`${fakeUrl("github")}/_fake/oauth/grant`, {
    method: "POST",
    body: JSON.stringify({
      user: { id, login: `browser${id}`, name: null, avatar_url: null },
      emails: [{ email: `browser${id}@example.test`, primary: true, verified: true, visibility: null }],
      redirect_uri: `${origin}/v1/auth/github/callback`,
    }),
  });
  const { code } = (await grant.json()) as { code: string };
  const cookie = `stagely_oauth_state=${started.stagely_oauth_state!.value}; stagely_oauth_return=${encodeURIComponent(started.stagely_oauth_return!.value)}`;
  const callback = await call("GET", `/v1/auth/github/callback?code=${code}&state=${state}`, { headers: { Cookie: cookie } });
  return { start, callback, cookies: cookiesOf(callback) };
}

/** Headers of a same-origin request from the dashboard with the session cookie. */
function fromDashboard(session: string, csrf: string | undefined, extra: Record<string, string> = {}) {
  return { Cookie: `stagely_session=${session}; stagely_csrf=${csrf ?? ""}`, "Sec-Fetch-Site": "same-origin", ...(csrf ? { "X-CSRF-Token": csrf } : {}), ...extra };
}

describe("browser sign-in with GitHub", () => {
  it("ends in an HttpOnly session cookie and a redirect to return_to, with no token in the body", async () => {
    const { start, callback, cookies } = await browserSignIn("/t/acme/environments?status=all");
    expect(cookiesOf(start).stagely_oauth_return!.attributes).toMatch(/HttpOnly/);
    expect(callback.status).toBe(302);
    expect(callback.headers.get("location")).toBe("/t/acme/environments?status=all");
    expect(callback.headers.get("cache-control")).toBe("no-store");
    expect(callback.text).not.toMatch(/stg_ses_/);
    const session = cookies.stagely_session!;
    expect(session.value).toMatch(/^stg_ses_[0-9A-Za-z]{32}$/);
    expect(session.attributes).toMatch(/HttpOnly/);
    expect(session.attributes).toMatch(/SameSite=Lax/);
    expect(session.attributes).toMatch(/Path=\//);
    // The CSRF token is readable by the dashboard's scripts and bound to this session.
    expect(cookies.stagely_csrf!.attributes).not.toMatch(/HttpOnly/);
    expect(cookies.stagely_csrf!.value).toBe(await hmacSha256Hex(`csrf:${env.ENCRYPTION_KEY}`, session.value));
    expect(cookies.stagely_oauth_return!.value).toBe("");

    const me = await call("GET", "/v1/me", { headers: { Cookie: `stagely_session=${session.value}` } });
    expect(me.status).toBe(200);
    expect(me.body.user.github_login).toMatch(/^browser/);
  });

  it("keeps answering JSON with the token when the sign-in did not ask for a cookie", async () => {
    const start = await call("GET", "/v1/auth/github");
    expect(cookiesOf(start).stagely_oauth_return).toBeUndefined();
  });

  it("refuses a return_to that leaves the site", async () => {
    for (const target of ["//evil.test/x", "https://evil.test/", "/\\evil.test", "relative", "/a b"]) {
      const response = await call("GET", `/v1/auth/github?return_to=${encodeURIComponent(target)}`);
      expect(response.status, target).toBe(400);
      expect(response.body.error.issues[0].path).toBe("return_to");
      expect(response.headers.get("set-cookie")).toBeNull();
    }
  });
});

describe("the session cookie", () => {
  async function signedIn() {
    const { cookies } = await browserSignIn("/");
    const session = cookies.stagely_session!.value;
    const csrf = cookies.stagely_csrf!.value;
    const me = await call("GET", "/v1/me", { headers: { Cookie: `stagely_session=${session}` } });
    return { session, csrf, userId: me.body.user.id as string };
  }
  const teamCount = async (userId: string) => (await db.select().from(auditLogs).where(and(eq(auditLogs.actorId, userId), eq(auditLogs.action, "team.created")))).length;

  it("authenticates changes from the dashboard's own pages (same origin, CSRF header)", async () => {
    const { session, csrf, userId } = await signedIn();
    const created = await call("POST", "/v1/teams", { headers: fromDashboard(session, csrf), body: { name: "Cookie team", slug: `cookie-${userId.slice(4, 12)}` } });
    expect(created.status, created.text).toBe(201);
    // Browsers without Sec-Fetch-Site: the Origin header must be this site.
    const viaOrigin = await call("POST", "/v1/teams", {
      headers: { Cookie: `stagely_session=${session}`, Origin: origin, "X-CSRF-Token": csrf },
      body: { name: "Cookie team 2", slug: `cookie2-${userId.slice(4, 12)}` },
    });
    expect(viaOrigin.status, viaOrigin.text).toBe(201);
  });

  it("refuses cookie changes without the CSRF header, with a wrong one, or from another site, and changes nothing", async () => {
    const { session, csrf, userId } = await signedIn();
    const other = await signedIn();
    const attempts: Record<string, string>[] = [
      fromDashboard(session, undefined),
      fromDashboard(session, "0".repeat(64)),
      fromDashboard(session, other.csrf),
      fromDashboard(session, csrf, { "Sec-Fetch-Site": "cross-site" }),
      fromDashboard(session, csrf, { "Sec-Fetch-Site": "same-site" }),
      { Cookie: `stagely_session=${session}`, "X-CSRF-Token": csrf, Origin: "https://evil.test" },
      { Cookie: `stagely_session=${session}`, "X-CSRF-Token": csrf },
    ];
    for (const headers of attempts) {
      const response = await call("POST", "/v1/teams", { headers, body: { name: "Forged", slug: `forged-${userId.slice(4, 12)}` } });
      expect(response.status, JSON.stringify(headers)).toBe(403);
      expect(response.body.error.message).toMatch(/cross-site|X-CSRF-Token/);
    }
    expect(await teamCount(userId)).toBe(0);
    expect(await db.select().from(teams).where(eq(teams.slug, `forged-${userId.slice(4, 12)}`))).toEqual([]);
    // Reads need no CSRF token; a bearer token never needs one.
    expect((await call("GET", "/v1/teams", { headers: { Cookie: `stagely_session=${session}`, "Sec-Fetch-Site": "cross-site" } })).status).toBe(200);
    const user = await seedUser();
    expect((await call("POST", "/v1/tokens", { token: user.token, body: { name: "cli" }, headers: { Cookie: `stagely_session=${session}` } })).status).toBe(201);
  });

  it("accepts only session tokens from the cookie", async () => {
    const user = await seedUser();
    const response = await call("GET", "/v1/me", { headers: { Cookie: `stagely_session=${user.token}` } });
    expect(response.status).toBe(401);
    expect(response.body.error.message).toMatch(/session cookie/);
  });

  it("sign out revokes the session and clears both cookies", async () => {
    const { session, csrf } = await signedIn();
    const out = await call("POST", "/v1/auth/logout", { headers: fromDashboard(session, csrf) });
    expect(out.status).toBe(204);
    const cleared = cookiesOf(out);
    expect(cleared.stagely_session!.value).toBe("");
    expect(cleared.stagely_session!.attributes).toMatch(/Max-Age=0/);
    expect(cleared.stagely_csrf!.value).toBe("");
    expect((await call("GET", "/v1/me", { headers: { Cookie: `stagely_session=${session}` } })).status).toBe(401);
  });
});

describe("one-time sign-in links", () => {
  it("open a dashboard session once, are audited, and then refuse", async () => {
    const user = await seedUser();
    const team = await seedTeam([{ user, role: "viewer" }]);
    const link = new URL(await mintSignInLink(db, origin, user.id));
    expect(link.pathname).toBe("/v1/auth/link");
    const opened = await call("GET", `${link.pathname}${link.search}`);
    expect(opened.status).toBe(302);
    expect(opened.headers.get("location")).toBe("/");
    const cookies = cookiesOf(opened);
    const me = await call("GET", "/v1/me", { headers: { Cookie: `stagely_session=${cookies.stagely_session!.value}` } });
    expect(me.body.teams).toEqual([{ id: team.id, slug: team.slug, role: "viewer" }]);
    expect(await db.select().from(auditLogs).where(and(eq(auditLogs.actorId, user.id), eq(auditLogs.action, "user.logged_in")))).toEqual([
      expect.objectContaining({ metadata: { via: "sign_in_link" } }),
    ]);

    const again = await call("GET", `${link.pathname}${link.search}`);
    expect(again.status).toBe(401);
    expect(again.body.error.message).toMatch(/already used/);
    expect(again.headers.get("set-cookie")).toBeNull();
  });

  it("refuse an expired link, and a link code is never a bearer token", async () => {
    const user = await seedUser();
    const link = new URL(await mintSignInLink(db, origin, user.id));
    const code = link.searchParams.get("code")!;
    expect((await call("GET", "/v1/me", { token: code })).status).toBe(401);
    expect((await call("GET", "/v1/me", { headers: { Cookie: `stagely_session=${code}` } })).status).toBe(401);
    await db.update(apiTokens).set({ expiresAt: new Date(Date.now() - 1000) }).where(and(eq(apiTokens.userId, user.id), eq(apiTokens.kind, "sign_in_link")));
    const late = await call("GET", `${link.pathname}${link.search}`);
    expect(late.status).toBe(401);
    const sessions = await db.select().from(apiTokens).where(and(eq(apiTokens.userId, user.id), eq(apiTokens.kind, "session")));
    expect(sessions).toEqual([]);
  });

  it("rejects a malformed code with 400", async () => {
    const response = await call("GET", "/v1/auth/link?code=stg_ses_abc");
    expect(response.status).toBe(400);
    expect(response.body.error.issues[0].path).toBe("code");
  });
});
