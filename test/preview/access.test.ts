import { env } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../src/auth/tokens.ts";
import { apiTokens, auditLogs, environments, previewShareTokens, teamMembers, workflowRuns, buildJobs } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { Logger } from "../../src/lib/logger.ts";
import { publishPreviewHosts } from "../../src/preview/snapshot.ts";
import { db } from "../db.ts";
import { fakeUrl } from "../fakes/urls.ts";
import { call, seedUser, type SeededUser } from "../harness.ts";
import { servePreview, visit, type ServedPreview } from "./helpers.ts";

// Who may open a preview: team-only by default (GitHub sign-in on the API host, then a cookie for that one host),
// X-Stagely-Token, share tokens, public previews; and the app never sees a Stagely credential.

const API = "https://stagely.test";
const COOKIE = "__Host-stagely_preview";
const html = { Accept: "text/html,application/xhtml+xml" };
const json = { Accept: "application/json" };

let preview: ServedPreview;
let other: ServedPreview;
let viewer: SeededUser;
let outsider: SeededUser;

beforeAll(async () => {
  preview = await servePreview({ access: "team" });
  other = await servePreview({ access: "team" });
  viewer = await seedUser();
  await db.insert(teamMembers).values({ teamId: preview.team.id, userId: viewer.id, role: "viewer" });
  outsider = await seedUser();
});
afterAll(async () => {
  await preview?.agent.stop();
  await other?.agent.stop();
});

/** The headers the app received, from the test app's /echo. */
async function appSaw(response: Response): Promise<Map<string, string>> {
  expect(response.status).toBe(200);
  return new Map((await response.json<{ headers: [string, string][] }>()).headers);
}

/** The value of a Set-Cookie for `name`, and its attributes. */
function cookieOf(response: Response, name = COOKIE): { value: string; attributes: string } {
  const header = response.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  if (!header) throw new Error(`no ${name} cookie in ${JSON.stringify(response.headers.getSetCookie())}`);
  const [pair, ...attributes] = header.split(";");
  return { value: pair!.slice(name.length + 1), attributes: attributes.join(";") };
}

/** Plays a visitor's browser through GitHub sign-in, from the preview's redirect back to the preview with a cookie. */
async function signIn(target: ServedPreview, github: { id: number; login: string; email: string }, path = "/echo?from=sign-in", route?: string) {
  const start = await visit(target.url(path, route), { headers: html });
  expect(start.status).toBe(302);
  const signInUrl = new URL(start.headers.get("location")!);
  expect(`${signInUrl.origin}${signInUrl.pathname}`).toBe(`${API}/v1/auth/github/preview`);

  const toGitHub = await call("GET", `${signInUrl.pathname}${signInUrl.search}`);
  expect(toGitHub.status).toBe(302);
  const authorize = new URL(toGitHub.headers.get("location")!);
  expect(authorize.searchParams.get("redirect_uri")).toBe(`${API}/v1/auth/github/callback/preview`);
  const stateCookie = /stagely_preview_oauth=([^;]+)/.exec(toGitHub.headers.get("set-cookie") ?? "")![1]!;

  const grant = await fetch(`${fakeUrl("github")}/_fake/oauth/grant`, {
    method: "POST",
    body: JSON.stringify({
      user: { id: github.id, login: github.login, name: null, avatar_url: null },
      emails: [{ email: github.email, primary: true, verified: true }],
      redirect_uri: `${API}/v1/auth/github/callback/preview`,
    }),
  });
  const { code } = (await grant.json()) as { code: string };
  const callback = await call("GET", `/v1/auth/github/callback/preview?code=${code}&state=${encodeURIComponent(authorize.searchParams.get("state")!)}`, {
    headers: { Cookie: `stagely_preview_oauth=${stateCookie}` },
  });
  return callback;
}

/** Links a seeded user to a GitHub identity, as an earlier sign-in would have. */
async function githubIdentity(user: SeededUser) {
  const id = 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
  await db.execute(`UPDATE users SET github_id = ${id} WHERE id = '${user.id}'` as never);
  return { id, login: `gh-${user.id.slice(4)}`, email: user.email };
}

describe("a team-only preview", () => {
  it("sends a browser without a credential to GitHub sign-in, and tells API clients how to get in", async () => {
    const browser = await visit(preview.url("/echo?x=1"), { headers: html });
    expect(browser.status).toBe(302);
    const location = new URL(browser.headers.get("location")!);
    expect(location.searchParams.get("origin")).toBe(`https://${preview.hash}.${env.PREVIEW_DOMAIN}`);
    expect(location.searchParams.get("path")).toBe("/echo?x=1");

    const api = await visit(preview.url("/echo"), { headers: json });
    expect(api.status).toBe(401);
    const body = await api.json<{ error: { code: string; message: string } }>();
    expect(body.error.code).toBe("UNAUTHORIZED");
    expect(body.error.message).toContain("X-Stagely-Token");
  });

  it("lets a member in after GitHub sign-in with a host-only, HttpOnly, Secure, SameSite=Lax cookie the app never sees", async () => {
    const callback = await signIn(preview, await githubIdentity(preview.owner));
    expect(callback.status).toBe(302);
    const back = new URL(callback.headers.get("location")!);
    expect(back.origin).toBe(`https://${preview.hash}.${env.PREVIEW_DOMAIN}`);
    expect(back.pathname).toBe("/__stagely/auth");

    const exchange = await visit(back.toString(), { headers: html });
    expect(exchange.status).toBe(302);
    expect(exchange.headers.get("location")).toBe("/echo?from=sign-in");
    const cookie = cookieOf(exchange);
    expect(cookie.attributes).toMatch(/HttpOnly/i);
    expect(cookie.attributes).toMatch(/Secure/i);
    expect(cookie.attributes).toMatch(/SameSite=Lax/i);
    expect(cookie.attributes).toMatch(/Path=\//);
    expect(cookie.attributes).not.toMatch(/Domain/i);

    const seen = await appSaw(await visit(preview.url("/echo"), { headers: { Cookie: `app_a=1; ${COOKIE}=${cookie.value}; app_b=2` } }));
    expect(seen.get("cookie")).toBe("app_a=1; app_b=2");
    // Only the cookie: the app got no Stagely credential at all.
    expect([...seen.values()].some((v) => v.includes(cookie.value))).toBe(false);

    // The code worked once.
    const again = await visit(back.toString(), { headers: html });
    expect(again.status).toBe(401);
    expect(again.headers.getSetCookie()).toEqual([]);

    const [audit] = await db.select().from(auditLogs).where(and(eq(auditLogs.action, "environment.preview_signed_in"), eq(auditLogs.resourceId, preview.environmentId)));
    expect(audit).toMatchObject({ actorId: preview.owner.id, teamId: preview.team.id });
  });

  it("refuses a cookie minted for another preview, and for another route of the same preview", async () => {
    const callback = await signIn(other, await githubIdentity(other.owner));
    const cookie = cookieOf(await visit(callback.headers.get("location")!));
    expect((await visit(other.url("/echo"), { headers: { Cookie: `${COOKIE}=${cookie.value}` } })).status).toBe(200);

    const onPreview = await visit(preview.url("/echo"), { headers: { ...json, Cookie: `${COOKIE}=${cookie.value}` } });
    expect(onPreview.status).toBe(401);
    const onRoute = await visit(other.url("/echo", "api"), { headers: { ...json, Cookie: `${COOKIE}=${cookie.value}` } });
    expect(onRoute.status).toBe(401);
  });

  it("signs a member in on a route host too, with a cookie for that host only", async () => {
    const github = await githubIdentity(viewer);
    const callback = await signIn(preview, github, "/echo", "api");
    const back = new URL(callback.headers.get("location")!);
    expect(back.host).toBe(`api--${preview.hash}.${env.PREVIEW_DOMAIN}`);
    const cookie = cookieOf(await visit(back.toString()));
    expect((await visit(preview.url("/echo", "api"), { headers: { Cookie: `${COOKIE}=${cookie.value}` } })).status).toBe(200);
    expect((await visit(preview.url("/echo"), { headers: { ...json, Cookie: `${COOKIE}=${cookie.value}` } })).status).toBe(401);
  });

  it("refuses GitHub sign-in of someone outside the team", async () => {
    const callback = await signIn(preview, await githubIdentity(outsider));
    expect(callback.status).toBe(403);
    expect(callback.body.error.message).toContain("not a member");
  });

  it("refuses a sign-in for anything but a preview address", async () => {
    for (const origin of ["https://evil.example", `https://stagely.test`, `https://${preview.hash}.${env.PREVIEW_DOMAIN}/path`, `javascript:alert(1)`]) {
      const response = await call("GET", `/v1/auth/github/preview?origin=${encodeURIComponent(origin)}&path=/`);
      expect(response.status, origin).toBe(400);
    }
  });

  it("takes X-Stagely-Token of a member (any role), strips it, and answers 404 to another team's token, 401 to a bad one", async () => {
    const seen = await appSaw(await visit(preview.url("/echo"), { headers: { "X-Stagely-Token": viewer.token, Authorization: "Bearer app" } }));
    expect(seen.has("x-stagely-token")).toBe(false);
    expect(seen.get("authorization")).toBe("Bearer app");
    expect((await visit(preview.url("/echo"), { headers: { ...json, "X-Stagely-Token": outsider.token } })).status).toBe(404);
    expect((await visit(preview.url("/echo"), { headers: { ...json, "X-Stagely-Token": "stg_pat_" + "x".repeat(32) } })).status).toBe(401);
    expect((await visit(preview.url("/echo"), { headers: { ...json, "X-Stagely-Token": "not-a-token" } })).status).toBe(401);

    const revoked = await generateToken("api");
    await db.insert(apiTokens).values({ id: newId("token"), userId: viewer.id, kind: "api", name: "revoked", tokenHash: revoked.hash, tokenHint: revoked.hint, revokedAt: new Date() });
    expect((await visit(preview.url("/echo"), { headers: { ...json, "X-Stagely-Token": revoked.token } })).status).toBe(401);
  });

  it("shows members what a build is doing, with log links; a share visitor sees only that it is building", async () => {
    const runId = newId("workflowRun");
    await db.batch([
      db.update(environments).set({ status: "building" }).where(eq(environments.id, preview.environmentId)),
      db.insert(workflowRuns).values({ id: runId, environmentId: preview.environmentId, trigger: "pr_synchronized", commitHash: "d".repeat(40), status: "building" }),
      db.insert(buildJobs).values({ id: newId("buildJob"), workflowRunId: runId, name: "web_amd64", architecture: "amd64", contextPath: ".", dockerfilePath: "Dockerfile", status: "running" }),
    ]);
    await publishPreviewHosts(env, db, [preview.environmentId], new Logger("warn"));
    try {
      const member = await visit(preview.url("/"), { headers: { ...html, "X-Stagely-Token": preview.owner.token } });
      expect(member.status).toBe(503);
      const page = await member.text();
      expect(page).toContain("Building the preview");
      expect(page).toContain("web_amd64");
      expect(page).toMatch(/href="\/__stagely\/logs\/job_[0-9a-z]{16}"/);

      const share = await call("POST", `/v1/environments/${preview.environmentId}/share-tokens`, { token: preview.owner.token, body: { name: "reviewer" } });
      const guest = await visit(preview.url("/"), { headers: { ...html, "X-Stagely-Token": share.body.token } });
      expect(guest.status).toBe(503);
      const guestPage = await guest.text();
      expect(guestPage).toContain("Building the preview");
      expect(guestPage).not.toContain("web_amd64");
      expect(guestPage).not.toContain("/__stagely/logs");
    } finally {
      await db.batch([
        db.update(environments).set({ status: "ready" }).where(eq(environments.id, preview.environmentId)),
        db.update(workflowRuns).set({ status: "cancelled" }).where(eq(workflowRuns.id, runId)),
      ]);
      await publishPreviewHosts(env, db, [preview.environmentId], new Logger("warn"));
    }
  });
});

describe("share tokens", () => {
  it("open a team-only preview by link (the token leaves the address bar) or header, until revoked", async () => {
    const created = await call("POST", `/v1/environments/${preview.environmentId}/share-tokens`, { token: preview.owner.token, body: { name: "QA", expires_in_hours: 2 } });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^stg_shr_[0-9A-Za-z]{32}$/);
    const link = new URL(created.body.url);
    expect(link.host).toBe(`${preview.hash}.${env.PREVIEW_DOMAIN}`);
    expect(link.searchParams.get("stagely_share")).toBe(created.body.token);

    const opened = await visit(`${link.origin}/echo?keep=1&stagely_share=${created.body.token}&also=2`, { headers: html });
    expect(opened.status).toBe(302);
    expect(opened.headers.get("location")).toBe("/echo?keep=1&also=2");
    const cookie = cookieOf(opened);
    const seen = await appSaw(await visit(preview.url("/echo?keep=1"), { headers: { Cookie: `${COOKIE}=${cookie.value}` } }));
    expect(seen.get("cookie")).toBeUndefined();

    // A non-GET with the parameter goes through once, and the app does not see the parameter.
    const posted = await visit(preview.url(`/echo?stagely_share=${created.body.token}&x=1`), { method: "POST", body: "hi" });
    expect(((await posted.json()) as { path: string }).path).toBe("/echo?x=1");
    expect((await visit(preview.url("/echo"), { headers: { "X-Stagely-Token": created.body.token } })).status).toBe(200);

    const listed = await call("GET", `/v1/environments/${preview.environmentId}/share-tokens`, { token: viewer.token });
    expect(listed.status).toBe(200);
    expect(listed.body.data.find((t: { id: string }) => t.id === created.body.id)).toMatchObject({ name: "QA", revoked_at: null, token_hint: created.body.token.slice(0, 12) + "…" });
    expect(listed.text).not.toContain(created.body.token);

    expect((await call("DELETE", `/v1/share-tokens/${created.body.id}`, { token: preview.owner.token })).status).toBe(204);
    // Revocation reaches the host at once: the link, the header and the cookie it gave out all stop working.
    expect((await visit(preview.url("/echo"), { headers: { ...json, Cookie: `${COOKIE}=${cookie.value}` } })).status).toBe(401);
    expect((await visit(preview.url("/echo"), { headers: { ...json, "X-Stagely-Token": created.body.token } })).status).toBe(401);
    expect((await visit(created.body.url, { headers: json })).status).toBe(401);
    // A stale link on the browser of someone who may see the preview anyway does not lock them out.
    expect((await visit(created.body.url, { headers: { "X-Stagely-Token": viewer.token } })).status).toBe(200);
    expect((await call("DELETE", `/v1/share-tokens/${created.body.id}`, { token: preview.owner.token })).status).toBe(409);

    const audits = await db.select({ action: auditLogs.action }).from(auditLogs).where(eq(auditLogs.resourceId, created.body.id));
    expect(audits.map((a) => a.action).sort()).toEqual(["share_token.created", "share_token.revoked"]);
  });

  it("work only on their own preview, and not after they expire", async () => {
    const created = await call("POST", `/v1/environments/${preview.environmentId}/share-tokens`, { token: preview.owner.token, body: { name: "elsewhere" } });
    expect((await visit(other.url("/echo"), { headers: { ...json, "X-Stagely-Token": created.body.token } })).status).toBe(401);

    const expiring = await call("POST", `/v1/environments/${preview.environmentId}/share-tokens`, { token: preview.owner.token, body: { name: "short", expires_in_hours: 1 } });
    await db.update(previewShareTokens).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(previewShareTokens.id, expiring.body.id));
    await publishPreviewHosts(env, db, [preview.environmentId], new Logger("warn"));
    expect((await visit(preview.url("/echo"), { headers: { ...json, "X-Stagely-Token": expiring.body.token } })).status).toBe(401);
  });

  it("are refused as API tokens, and need the member role to create", async () => {
    const created = await call("POST", `/v1/environments/${preview.environmentId}/share-tokens`, { token: preview.owner.token, body: { name: "not for the API" } });
    expect((await call("GET", "/v1/me", { token: created.body.token })).status).toBe(401);
    expect((await call("POST", `/v1/environments/${preview.environmentId}/share-tokens`, { token: viewer.token, body: { name: "x" } })).status).toBe(403);
    expect((await call("POST", `/v1/environments/${preview.environmentId}/share-tokens`, { token: preview.owner.token, body: { name: "" } })).status).toBe(400);
    expect((await call("POST", `/v1/environments/${preview.environmentId}/share-tokens`, { token: preview.owner.token, body: { name: "x", expires_in_hours: 10_000 } })).status).toBe(400);
  });
});

describe("public previews and switching", () => {
  it("a public preview lets anyone in; switching the project to team closes it at once, and back", async () => {
    const anonymous = () => visit(preview.url("/echo"), { headers: json });
    expect((await anonymous()).status).toBe(401);
    const patched = await call("PATCH", `/v1/projects/${preview.projectId}`, { token: preview.owner.token, body: { preview_access: "public" } });
    expect(patched.status).toBe(200);
    expect(patched.body.preview_access).toBe("public");
    expect((await anonymous()).status).toBe(200);
    expect((await call("PATCH", `/v1/projects/${preview.projectId}`, { token: preview.owner.token, body: { preview_access: "team" } })).status).toBe(200);
    expect((await anonymous()).status).toBe(401);
    expect((await call("PATCH", `/v1/projects/${preview.projectId}`, { token: preview.owner.token, body: { preview_access: "everyone" } })).status).toBe(400);
  });
});
