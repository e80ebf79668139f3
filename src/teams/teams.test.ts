import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { call, seedProject, seedTeam, seedUser, seedWorld } from "../../test/harness.ts";
import { db } from "../../test/db.ts";
import { environments, teamMembers, teams } from "../db/schema.ts";
import { newId, newSubdomainHash } from "../lib/ids.ts";

describe("teams", () => {
  it("creates a team with the caller as owner, deriving the slug from the name", async () => {
    const user = await seedUser();
    const name = `Acme Widgets ${newId("team").slice(5, 11)}`;
    const created = await call("POST", "/v1/teams", { token: user.token, body: { name } });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ name, slug: name.toLowerCase().replaceAll(" ", "-"), role: "owner", billing_plan: "free", max_concurrent_environments: 5, max_concurrent_builds: 10 });
    const fetched = await call("GET", `/v1/teams/${created.body.slug}`, { token: user.token });
    expect(fetched.body.id).toBe(created.body.id);
    const conflict = await call("POST", "/v1/teams", { token: user.token, body: { name: "Other", slug: created.body.slug } });
    expect(conflict.status).toBe(409);
  });

  it("rejects bad input with 400 naming the field, and creates nothing", async () => {
    const user = await seedUser();
    const before = (await db.select().from(teams)).length;
    for (const [body, field] of [
      [{ name: "x", slug: "-bad-" }, "slug"],
      [{ name: "" }, "name"],
      [{ name: "ok", billing_email: "not-an-email" }, "billing_email"],
      [{ name: "ok", plan: "enterprise" }, "body"],
      [{ name: "!!!" }, "slug"],
    ] as const) {
      const response = await call("POST", "/v1/teams", { token: user.token, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.error.issues.map((i: { path: string }) => i.path)).toContain(field);
    }
    expect((await db.select().from(teams)).length).toBe(before);
  });

  it("lists only the caller's teams, newest first, a page at a time", async () => {
    const user = await seedUser();
    for (let i = 0; i < 3; i++) await call("POST", "/v1/teams", { token: user.token, body: { name: `Page ${i} ${user.id.slice(4, 10)}` } });
    await seedTeam([{ user: await seedUser(), role: "owner" }]);
    const first = await call("GET", "/v1/teams?limit=2", { token: user.token });
    expect(first.body.data).toHaveLength(2);
    expect(first.body.data[0].name).toMatch(/^Page 2/);
    const second = await call("GET", `/v1/teams?limit=2&cursor=${first.body.next_cursor}`, { token: user.token });
    expect(second.body.data.map((t: { name: string }) => t.name.slice(0, 6))).toEqual(["Page 0"]);
    expect(second.body.next_cursor).toBeNull();
    expect((await call("GET", "/v1/teams?cursor=garbage", { token: user.token })).status).toBe(400);
  });

  it("lets admins change settings and quotas, within limits", async () => {
    const w = await seedWorld();
    const changed = await call("PATCH", `/v1/teams/${w.team.slug}`, { token: w.admin.token, body: { name: "Renamed", max_concurrent_builds: 3 } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ name: "Renamed", max_concurrent_builds: 3, role: "admin" });
    const bad = await call("PATCH", `/v1/teams/${w.team.slug}`, { token: w.admin.token, body: { max_concurrent_builds: 0 } });
    expect(bad.status).toBe(400);
    expect((await call("PATCH", `/v1/teams/${w.team.slug}`, { token: w.admin.token, body: {} })).status).toBe(400);
    const [team] = await db.select().from(teams).where(eq(teams.id, w.team.id));
    expect(team!.maxConcurrentBuilds).toBe(3);
  });

  it("soft-deletes a team for its owner, but not while it has live previews", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const [environment] = await db
      .insert(environments)
      .values({ id: newId("environment"), projectId: project.id, prNumber: 1, branchName: "b", commitHash: "c", subdomainHash: newSubdomainHash(), size: "small", region: "x", status: "ready" })
      .returning();
    const refused = await call("DELETE", `/v1/teams/${w.team.slug}`, { token: w.owner.token });
    expect(refused.status).toBe(409);
    await db.update(environments).set({ status: "terminated" }).where(eq(environments.id, environment!.id));
    expect((await call("DELETE", `/v1/teams/${w.team.slug}`, { token: w.owner.token })).status).toBe(204);
    expect((await call("GET", `/v1/teams/${w.team.slug}`, { token: w.owner.token })).status).toBe(404);
    const reused = await call("POST", "/v1/teams", { token: w.owner.token, body: { name: "Again", slug: w.team.slug } });
    expect(reused.status).toBe(201);
  });
});

describe("members", () => {
  it("keeps owners for owners: admins cannot grant, change or remove the owner role", async () => {
    const w = await seedWorld();
    expect((await call("PATCH", `/v1/teams/${w.team.slug}/members/${w.owner.id}`, { token: w.admin.token, body: { role: "viewer" } })).status).toBe(403);
    expect((await call("DELETE", `/v1/teams/${w.team.slug}/members/${w.owner.id}`, { token: w.admin.token })).status).toBe(403);
    expect((await call("PATCH", `/v1/teams/${w.team.slug}/members/${w.member.id}`, { token: w.admin.token, body: { role: "owner" } })).status).toBe(403);
    const promoted = await call("PATCH", `/v1/teams/${w.team.slug}/members/${w.member.id}`, { token: w.admin.token, body: { role: "admin" } });
    expect(promoted.body).toMatchObject({ user_id: w.member.id, role: "admin" });
  });

  it("always keeps at least one owner", async () => {
    const w = await seedWorld();
    const demoteSelf = await call("PATCH", `/v1/teams/${w.team.slug}/members/${w.owner.id}`, { token: w.owner.token, body: { role: "admin" } });
    expect(demoteSelf.status).toBe(409);
    expect(demoteSelf.body.error.message).toMatch(/at least one owner/);
    expect((await call("DELETE", `/v1/teams/${w.team.slug}/members/${w.owner.id}`, { token: w.owner.token })).status).toBe(409);
    expect((await call("PATCH", `/v1/teams/${w.team.slug}/members/${w.admin.id}`, { token: w.owner.token, body: { role: "owner" } })).status).toBe(200);
    expect((await call("PATCH", `/v1/teams/${w.team.slug}/members/${w.owner.id}`, { token: w.owner.token, body: { role: "viewer" } })).status).toBe(200);
    const owners = await db.select().from(teamMembers).where(eq(teamMembers.role, "owner"));
    expect(owners.filter((o) => o.teamId === w.team.id).map((o) => o.userId)).toEqual([w.admin.id]);
  });

  it("lets any member leave, and 404s a user who is not a member", async () => {
    const w = await seedWorld();
    expect((await call("DELETE", `/v1/teams/${w.team.slug}/members/${w.viewer.id}`, { token: w.viewer.token })).status).toBe(204);
    expect((await call("GET", `/v1/teams/${w.team.slug}`, { token: w.viewer.token })).status).toBe(404);
    expect((await call("DELETE", `/v1/teams/${w.team.slug}/members/${w.outsider.id}`, { token: w.admin.token })).status).toBe(404);
  });
});
