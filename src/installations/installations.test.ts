import { env } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { countRoundTrips, db } from "../../test/db.ts";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { installationPayload, installationRepositoriesPayload, sendWebhook } from "../../test/github-webhooks.ts";
import { call, seedInstallation, seedProject, seedTeam, seedUser, type SeededTeam, type SeededUser } from "../../test/harness.ts";
import { repositoryAccess } from "../../test/installations.ts";
import { getConfig } from "../config.ts";
import { auditLogs, githubInstallationRepositories, githubInstallations, projects, teamMembers } from "../db/schema.ts";
import { signInstallState, verifyInstallState } from "./state.ts";

const CALLBACK_URL = "https://stagely.test/v1/github/installations/callback";
// GitHub user ids of this file (the fake GitHub is shared by every test file).
let githubIds = 7_100_000;
let repoCounter = 0;

async function fake<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${fakeUrl("github")}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) throw new Error(`fake GitHub ${method} ${path}: ${response.status}`);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

/** Repositories of their own for a test, installed on the fake GitHub App (not yet known to Stagely). */
async function installApp(count = 2) {
  const names = Array.from({ length: count }, () => `acme/inst-${Date.now().toString(36)}-${repoCounter++}`);
  const installation = await fake<{ id: number; account: string; repositories: { id: number; full_name: string }[] }>("POST", "/_fake/app/installations", {
    repositories: names,
  });
  return { ...installation, names };
}

/** An admin of a new team, linked to a GitHub account (as signing in with GitHub leaves them). */
async function linkedAdmin(role: "admin" | "owner" = "admin") {
  const githubUser = { id: githubIds++, login: `installer-${githubIds}` };
  const user = await seedUser({ githubId: githubUser.id });
  const team = await seedTeam([{ user, role }]);
  return { user, team, githubUser };
}

/** The user approving the App's authorization during the install: a code, and the installations they can access. */
async function authorize(githubUser: { id: number; login: string }, installations: number[]): Promise<string> {
  const response = await fake<{ code: string }>("POST", "/_fake/oauth/grant", {
    user: { ...githubUser, name: null, avatar_url: null },
    emails: [{ email: `${githubUser.login}@example.test`, primary: true, verified: true, visibility: null }],
    redirect_uri: CALLBACK_URL,
    installations,
  });
  return response.code;
}

async function installState(user: SeededUser, team: SeededTeam): Promise<string> {
  const link = await call("GET", `/v1/teams/${team.slug}/github/install-url`, { token: user.token });
  expect(link.status, link.text).toBe(200);
  return new URL(link.body.url).searchParams.get("state")!;
}

function callback(query: Record<string, string | number | undefined>, options: { json?: boolean } = { json: true }) {
  const params = new URLSearchParams(Object.entries(query).filter((e): e is [string, string | number] => e[1] !== undefined).map(([k, v]) => [k, String(v)]));
  return call("GET", `/v1/github/installations/callback?${params}`, { headers: options.json ? { Accept: "application/json" } : {} });
}

async function installationRow(id: number) {
  const [row] = await db.select().from(githubInstallations).where(eq(githubInstallations.id, id));
  return row;
}

async function repositoryNames(installationId: number) {
  const rows = await db.select().from(githubInstallationRepositories).where(eq(githubInstallationRepositories.installationId, installationId));
  return rows.map((r) => r.fullName).sort();
}

describe("the install link", () => {
  it("sends an admin to the App's install page with a state bound to the team and the user, for 30 minutes", async () => {
    const { user, team } = await linkedAdmin();
    const link = await call("GET", `/v1/teams/${team.slug}/github/install-url`, { token: user.token });
    expect(link.status, link.text).toBe(200);
    const url = new URL(link.body.url);
    expect(`${url.origin}${url.pathname}`).toBe(`${fakeUrl("github")}/apps/${env.GITHUB_APP_SLUG}/installations/new`);
    expect(await verifyInstallState(getConfig(env), url.searchParams.get("state")!)).toEqual({ teamId: team.id, userId: user.id });
    const minutes = (Date.parse(link.body.expires_at) - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(29);
    expect(minutes).toBeLessThanOrEqual(30);
  });
});

describe("connecting an installation to a team (the App's callback)", () => {
  it("records it for the team with its repositories, binds the team's projects on them, audits, and redirects", async () => {
    const { user, team, githubUser } = await linkedAdmin();
    const installed = await installApp(2);
    const project = await seedProject(team.id, { repoUrl: `https://github.com/${installed.names[0]}`, githubInstallationId: null });
    const state = await installState(user, team);

    const connected = await callback({ installation_id: installed.id, setup_action: "install", state, code: await authorize(githubUser, [installed.id]) });
    expect(connected.status, connected.text).toBe(200);
    expect(connected.headers.get("cache-control")).toBe("no-store");
    expect(connected.body).toMatchObject({
      status: "connected",
      team: team.slug,
      installation: {
        id: installed.id,
        account_login: "acme",
        account_type: "Organization",
        suspended_at: null,
        claimed_by: user.id,
        repositories: installed.repositories.map((r) => ({ id: r.id, full_name: r.full_name })).sort((a, b) => a.full_name.localeCompare(b.full_name)),
      },
    });
    expect(await installationRow(installed.id)).toMatchObject({ teamId: team.id, claimedBy: user.id });
    const [bound] = await db.select().from(projects).where(eq(projects.id, project.id));
    expect(bound!.githubInstallationId).toBe(installed.id);
    const audits = await db.select().from(auditLogs).where(and(eq(auditLogs.teamId, team.id), eq(auditLogs.action, "github_installation.connected")));
    expect(audits).toEqual([expect.objectContaining({ actorId: user.id, resourceId: String(installed.id) })]);

    // A browser (no Accept: application/json) is sent back to the app; installing again re-reads the repositories.
    await fake("PATCH", `/_fake/app/installations/${installed.id}`, { repositories: [installed.names[1]] });
    const again = await callback({ installation_id: installed.id, setup_action: "update", state, code: await authorize(githubUser, []) }, { json: false });
    expect(again.status, again.text).toBe(302);
    expect(again.headers.get("location")).toBe(`https://stagely.test/?github_installation=${installed.id}&team=${team.slug}`);
    expect(await repositoryNames(installed.id)).toEqual([installed.names[1]!.toLowerCase()]);
  });

  it("refuses a state this server did not sign, an expired one, and a missing code; nothing is recorded", async () => {
    const { user, team, githubUser } = await linkedAdmin();
    const installed = await installApp(1);
    const state = await installState(user, team);
    const [teamId, userId, expires] = state.split(".");
    const forged = `${teamId}.${userId}.${Number(expires) + 3600}.${"0".repeat(64)}`;
    const expired = (await signInstallState(getConfig(env), { teamId: team.id, userId: user.id }, Date.now() - 31 * 60_000)).state;
    for (const [bad, message] of [
      [forged, /invalid install state/],
      [expired, /the install link expired/],
    ] as const) {
      const refused = await callback({ installation_id: installed.id, setup_action: "install", state: bad, code: await authorize(githubUser, [installed.id]) });
      expect(refused.status, refused.text).toBe(401);
      expect(refused.body.error.message).toMatch(message);
    }
    const noCode = await callback({ installation_id: installed.id, setup_action: "install", state });
    expect(noCode.status).toBe(401);
    expect(noCode.body.error.message).toMatch(/Request user authorization \(OAuth\) during installation/);
    expect(await installationRow(installed.id)).toBeUndefined();
  });

  it("refuses when the GitHub user who authorized is not the one linked to the Stagely user who asked (a forwarded link)", async () => {
    const { user, team } = await linkedAdmin();
    const installed = await installApp(1);
    const state = await installState(user, team);
    // Someone else follows the admin's link and installs the App on their own account.
    const victim = { id: githubIds++, login: "someone-else" };
    const refused = await callback({ installation_id: installed.id, setup_action: "install", state, code: await authorize(victim, [installed.id]) });
    expect(refused.status, refused.text).toBe(403);
    expect(refused.body.error.message).toMatch(/@someone-else authorized this installation, but the install link was made for another GitHub account/);
    expect(await installationRow(installed.id)).toBeUndefined();
  });

  it("refuses an installation id the GitHub user cannot access (a spoofed installation_id)", async () => {
    const { user, team, githubUser } = await linkedAdmin();
    const theirs = await installApp(1);
    const someoneElses = await installApp(1);
    const state = await installState(user, team);
    const refused = await callback({ installation_id: someoneElses.id, setup_action: "install", state, code: await authorize(githubUser, [theirs.id]) });
    expect(refused.status, refused.text).toBe(403);
    expect(refused.body.error.message).toBe(`GitHub user @${githubUser.login} cannot access GitHub App installation ${someoneElses.id}`);
    expect(await installationRow(someoneElses.id)).toBeUndefined();
  });

  it("refuses a user with no linked GitHub account, and one who is no longer an admin", async () => {
    const unlinked = await seedUser();
    const unlinkedTeam = await seedTeam([{ user: unlinked, role: "owner" }]);
    const installed = await installApp(1);
    const refusedUnlinked = await callback({
      installation_id: installed.id,
      setup_action: "install",
      state: await installState(unlinked, unlinkedTeam),
      code: await authorize({ id: githubIds++, login: "unlinked" }, [installed.id]),
    });
    expect(refusedUnlinked.status).toBe(403);
    expect(refusedUnlinked.body.error.message).toMatch(/not linked to a GitHub account: sign in with GitHub once/);

    const { user, team, githubUser } = await linkedAdmin();
    const state = await installState(user, team);
    await db.update(teamMembers).set({ role: "member" }).where(and(eq(teamMembers.teamId, team.id), eq(teamMembers.userId, user.id)));
    const demoted = await callback({ installation_id: installed.id, setup_action: "install", state, code: await authorize(githubUser, [installed.id]) });
    expect(demoted.status).toBe(403);
    expect(demoted.body.error.message).toMatch(/needs the admin role or higher/);
    expect(await installationRow(installed.id)).toBeUndefined();
  });

  it("answers a request for approval (an organization member without rights) without recording anything", async () => {
    const { user, team } = await linkedAdmin();
    const requested = await callback({ setup_action: "request", state: await installState(user, team) });
    expect(requested.status).toBe(200);
    expect(requested.body).toEqual({ status: "requested", team: team.slug });
  });

  it("gives a second team a 409 that names nothing of the first; once disconnected, the second team can connect it", async () => {
    const first = await linkedAdmin();
    const second = await linkedAdmin("owner");
    const installed = await installApp(1);
    const claim = async (who: typeof first) =>
      callback({ installation_id: installed.id, setup_action: "install", state: await installState(who.user, who.team), code: await authorize(who.githubUser, [installed.id]) });
    expect((await claim(first)).status).toBe(200);

    const refused = await claim(second);
    expect(refused.status, refused.text).toBe(409);
    expect(refused.body.error.message).toBe("this GitHub App installation is connected to another Stagely team; an admin of that team must disconnect it first");
    for (const secret of [first.team.id, first.team.slug, first.user.id, first.user.email, first.githubUser.login]) expect(refused.text).not.toContain(secret);
    expect(await installationRow(installed.id)).toMatchObject({ teamId: first.team.id, claimedBy: first.user.id });

    expect((await call("DELETE", `/v1/teams/${first.team.slug}/github/installations/${installed.id}`, { token: first.user.token })).status).toBe(204);
    const connected = await claim(second);
    expect(connected.status, connected.text).toBe(200);
    expect(await installationRow(installed.id)).toMatchObject({ teamId: second.team.id, claimedBy: second.user.id });
  });
});

describe("a team's installations", () => {
  it("lists the team's installations with their repositories, page by page, and never another team's", async () => {
    const { user, team } = await linkedAdmin();
    const viewer = await seedUser();
    await db.insert(teamMembers).values({ teamId: team.id, userId: viewer.id, role: "viewer" });
    const older = await seedInstallation(team.id, [`acme/list-b-${repoCounter++}`, `acme/list-a-${repoCounter++}`]);
    const newer = await seedInstallation(team.id, [`acme/list-c-${repoCounter++}`]);
    await db.update(githubInstallations).set({ createdAt: new Date(Date.now() - 60_000) }).where(eq(githubInstallations.id, older.id));
    const other = await linkedAdmin();
    await seedInstallation(other.team.id, [`acme/list-other-${repoCounter++}`]);

    const first = await call("GET", `/v1/teams/${team.slug}/github/installations?limit=1`, { token: viewer.token });
    expect(first.status, first.text).toBe(200);
    expect(first.body.data.map((i: { id: number }) => i.id)).toEqual([newer.id]);
    const second = await call("GET", `/v1/teams/${team.slug}/github/installations?limit=1&cursor=${first.body.next_cursor}`, { token: user.token });
    expect(second.body).toMatchObject({ data: [{ id: older.id }], next_cursor: null });
    expect(second.body.data[0].repositories.map((r: { full_name: string }) => r.full_name)).toEqual(older.repositories.map((r) => r.full_name).sort());
  });

  it("disconnects an installation: the team's projects let go of it, the audit log says who; unknown or another team's is 404", async () => {
    const { user, team } = await linkedAdmin();
    const project = await seedProject(team.id);
    const installationId = project.githubInstallationId!;
    const disconnected = await call("DELETE", `/v1/teams/${team.slug}/github/installations/${installationId}`, { token: user.token });
    expect(disconnected.status, disconnected.text).toBe(204);
    expect(await installationRow(installationId)).toMatchObject({ teamId: null, claimedBy: null });
    const [unbound] = await db.select().from(projects).where(eq(projects.id, project.id));
    expect(unbound!.githubInstallationId).toBeNull();
    expect(await repositoryAccess(db, unbound!)).toMatchObject({ ok: false, reason: expect.stringMatching(/is not installed on acme\/prj_\w+ for this team/) });
    const audits = await db.select().from(auditLogs).where(and(eq(auditLogs.teamId, team.id), eq(auditLogs.action, "github_installation.disconnected")));
    expect(audits).toEqual([expect.objectContaining({ actorId: user.id, resourceId: String(installationId) })]);

    expect((await call("DELETE", `/v1/teams/${team.slug}/github/installations/${installationId}`, { token: user.token })).status).toBe(404);
    const other = await linkedAdmin();
    const theirs = await seedInstallation(other.team.id, [`acme/theirs-${repoCounter++}`]);
    expect((await call("DELETE", `/v1/teams/${team.slug}/github/installations/${theirs.id}`, { token: user.token })).status).toBe(404);
    expect((await call("DELETE", `/v1/teams/${team.slug}/github/installations/not-a-number`, { token: user.token })).status).toBe(400);
    expect(await installationRow(theirs.id)).toMatchObject({ teamId: other.team.id });
  });

  it("are let go when the team is deleted, so another team can claim them", async () => {
    const { user, team } = await linkedAdmin("owner");
    const installation = await seedInstallation(team.id, [`acme/deleted-team-${repoCounter++}`]);
    expect((await call("DELETE", `/v1/teams/${team.slug}`, { token: user.token })).status).toBe(204);
    expect(await installationRow(installation.id)).toMatchObject({ teamId: null });
  });
});

describe("installation webhooks", () => {
  let nextId = 880_000_000;
  const repository = () => ({ id: 990_000_000 + repoCounter, full_name: `Acme/Hooked-${repoCounter++}` });

  it("stores a new installation unclaimed with its repositories, once per delivery, in two round trips", async () => {
    const id = nextId++;
    const repositories = [repository(), repository()];
    const deliveryId = crypto.randomUUID();
    let applied!: Awaited<ReturnType<typeof sendWebhook>>;
    const trips = await countRoundTrips(async () => (applied = await sendWebhook("installation", installationPayload({ action: "created", id, repositories }), { deliveryId })));
    expect(applied.status, applied.text).toBe(200);
    expect(applied.body).toEqual({ status: "applied" });
    expect(trips).toBe(2);
    expect(await installationRow(id)).toMatchObject({ teamId: null, accountLogin: "acme", repositorySelection: "selected", suspendedAt: null });
    expect(await repositoryNames(id)).toEqual(repositories.map((r) => r.full_name.toLowerCase()).sort());
    expect((await sendWebhook("installation", installationPayload({ action: "created", id, repositories: [] }), { deliveryId })).body).toEqual({ status: "duplicate" });
    expect(await repositoryNames(id)).toHaveLength(2);
    expect(await db.select().from(auditLogs).where(eq(auditLogs.resourceId, String(id)))).toEqual([]);
  });

  it("keeps a claimed installation current: repositories added and removed, suspended, unsuspended, permissions, each audited", async () => {
    const { team } = await linkedAdmin();
    const project = await seedProject(team.id);
    const id = project.githubInstallationId!;
    const added = { id: 990_500_000 + repoCounter, full_name: `acme/added-${repoCounter++}` };
    const later = await seedProject(team.id, { repoUrl: `https://github.com/${added.full_name}`, githubInstallationId: null });

    await sendWebhook("installation_repositories", installationRepositoriesPayload({ action: "added", id, added: [added] }));
    expect(await repositoryNames(id)).toContain(added.full_name);
    const [bound] = await db.select().from(projects).where(eq(projects.id, later.id));
    expect(bound!.githubInstallationId).toBe(id);
    expect(await repositoryAccess(db, bound!)).toMatchObject({ ok: true, repo: { owner: "acme", name: added.full_name.split("/")[1], installationId: id } });

    await sendWebhook("installation_repositories", installationRepositoriesPayload({ action: "removed", id, removed: [added] }));
    expect(await repositoryNames(id)).not.toContain(added.full_name);
    expect(await repositoryAccess(db, bound!)).toMatchObject({ ok: false, reason: expect.stringMatching(/is not among the repositories the Stagely GitHub App installation on acme can access/) });

    await sendWebhook("installation", installationPayload({ action: "suspend", id, suspendedAt: "2026-11-26T10:00:00Z" }));
    expect((await installationRow(id))!.suspendedAt).toEqual(new Date("2026-11-26T10:00:00Z"));
    expect(await repositoryAccess(db, project)).toMatchObject({ ok: false, reason: expect.stringMatching(/installation on acme is suspended/) });
    await sendWebhook("installation", installationPayload({ action: "unsuspend", id }));
    expect((await installationRow(id))!.suspendedAt).toBeNull();
    expect(await repositoryAccess(db, project)).toMatchObject({ ok: true });

    const accepted = installationPayload({ action: "new_permissions_accepted", id });
    (accepted.installation.permissions as Record<string, string>).checks = "write";
    await sendWebhook("installation", accepted);
    expect((await installationRow(id))!.permissions).toMatchObject({ checks: "write" });

    const audits = await db.select().from(auditLogs).where(and(eq(auditLogs.teamId, team.id), eq(auditLogs.resourceId, String(id))));
    expect(audits.map((a) => a.action).sort()).toEqual([
      "github_installation.permissions_accepted",
      "github_installation.repositories_added",
      "github_installation.repositories_removed",
      "github_installation.suspended",
      "github_installation.unsuspended",
    ]);
    expect(audits.every((a) => a.actorId === null && (a.metadata as { sender: string }).sender === "octocat")).toBe(true);
  });

  it("forgets an uninstalled installation: its repositories go, projects let go of it, the team's log says so", async () => {
    const { team } = await linkedAdmin();
    const project = await seedProject(team.id);
    const id = project.githubInstallationId!;
    const deleted = await sendWebhook("installation", installationPayload({ action: "deleted", id }));
    expect(deleted.body).toEqual({ status: "applied" });
    expect(await installationRow(id)).toBeUndefined();
    expect(await repositoryNames(id)).toEqual([]);
    const [unbound] = await db.select().from(projects).where(eq(projects.id, project.id));
    expect(unbound!.githubInstallationId).toBeNull();
    expect(await db.select().from(auditLogs).where(and(eq(auditLogs.teamId, team.id), eq(auditLogs.action, "github_installation.deleted")))).toHaveLength(1);
  });

  it("ignores actions it does not use and refuses malformed payloads with 400, storing nothing", async () => {
    const id = nextId++;
    const ignored = await sendWebhook("installation_target", { action: "renamed" });
    expect(ignored.body).toEqual({ status: "ignored", reason: "event installation_target is not used" });
    const unused = await sendWebhook("installation", { ...installationPayload({ action: "created", id }), action: "suspend_requested" });
    expect(unused.body).toEqual({ status: "ignored", reason: "action suspend_requested is not used" });
    const malformed = installationPayload({ action: "created", id });
    (malformed.installation as { id: unknown }).id = "not-a-number";
    const refused = await sendWebhook("installation", malformed);
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/^not an installation payload: installation.id/);
    const noRepositories = await sendWebhook("installation_repositories", { action: "added", installation: installationPayload({ action: "x", id }).installation, repositories_added: [{ id: 1 }] });
    expect(noRepositories.status).toBe(400);
    expect(await installationRow(id)).toBeUndefined();
  });
});
