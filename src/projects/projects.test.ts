import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { call, seedCloudProvider, seedInstallation, seedProject, seedWorld } from "../../test/harness.ts";
import { db } from "../../test/db.ts";
import { auditLogs, environments, projects } from "../db/schema.ts";
import { newId, newSubdomainHash } from "../lib/ids.ts";

describe("projects", () => {
  it("creates a project from owner/name, normalising the repository URL, filling defaults and recording the installation", async () => {
    const w = await seedWorld();
    const installation = await seedInstallation(w.team.id, ["acme/web"]);
    const provider = await seedCloudProvider(w.team.id);
    const created = await call("POST", `/v1/teams/${w.team.slug}/projects`, {
      token: w.admin.token,
      body: { name: "Web App", repo_url: "Acme/Web.git", cloud_provider_id: provider.id },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      slug: "web-app",
      team_id: w.team.id,
      repo_url: "https://github.com/acme/web",
      default_branch: "main",
      default_preview_size: "medium",
      cloud_provider_id: provider.id,
      fork_previews: false,
      preview_ttl_hours: 24,
    });
    const [row] = await db.select().from(projects).where(eq(projects.id, created.body.id));
    expect(row!.githubInstallationId).toBe(installation.id);
    const [audit] = await db.select().from(auditLogs).where(eq(auditLogs.resourceId, created.body.id));
    expect(audit).toMatchObject({ action: "project.created", actorId: w.admin.id, teamId: w.team.id, projectId: created.body.id });
    expect((await call("POST", `/v1/teams/${w.team.slug}/projects`, { token: w.admin.token, body: { name: "Web App", repo_url: "acme/web" } })).status).toBe(409);
  });

  it("refuses another team's cloud provider and bad input, creating nothing", async () => {
    const w = await seedWorld();
    await seedInstallation(w.team.id, ["acme/x"]);
    const foreign = await seedCloudProvider(w.otherTeam.id);
    const count = async () => (await db.select().from(projects).where(eq(projects.teamId, w.team.id))).length;
    const crossTeam = await call("POST", `/v1/teams/${w.team.slug}/projects`, { token: w.owner.token, body: { name: "Cross", repo_url: "acme/x", cloud_provider_id: foreign.id } });
    expect(crossTeam.status).toBe(422);
    expect(crossTeam.body.error.message).toMatch(/cloud_provider_id/);
    for (const body of [
      { name: "X", repo_url: "https://gitlab.com/acme/x" },
      { name: "X", repo_url: "acme/../x" },
      { name: "X", repo_url: "acme/x", default_preview_size: "huge" },
      { name: "X", repo_url: "acme/x", preview_ttl_hours: 0 },
      { name: "X", repo_url: "acme/x", default_branch: "bad branch" },
      { name: "X" },
    ]) {
      const response = await call("POST", `/v1/teams/${w.team.slug}/projects`, { token: w.owner.token, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
    expect(await count()).toBe(0);
  });

  it("refuses a repository no installation of the team covers (another team's, a suspended one, none), with how to fix it", async () => {
    const w = await seedWorld();
    await seedInstallation(w.otherTeam.id, ["acme/theirs"]);
    await seedInstallation(w.team.id, ["acme/paused"], { suspended: true });
    await seedInstallation(null, ["acme/unclaimed"]);
    for (const repo of ["acme/theirs", "acme/paused", "acme/unclaimed", "acme/nowhere"]) {
      const refused = await call("POST", `/v1/teams/${w.team.slug}/projects`, { token: w.admin.token, body: { name: "Refused", repo_url: repo } });
      expect(refused.status, repo).toBe(422);
      expect(refused.body.error.message).toBe(
        `repo_url: ${repo} is not covered by an active Stagely GitHub App installation of this team. Install the App on it (GET /v1/teams/${w.team.slug}/github/install-url gives the link); GET /v1/teams/${w.team.slug}/github/installations lists the repositories the team can use`,
      );
    }
    expect(await db.select().from(projects).where(eq(projects.teamId, w.team.id))).toEqual([]);
    expect(await db.select().from(auditLogs).where(eq(auditLogs.teamId, w.team.id))).toEqual([]);
  });

  it("moves a project to another repository only if an installation of the team covers it, and records that installation", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    await seedInstallation(w.otherTeam.id, ["acme/theirs"]);
    const refused = await call("PATCH", `/v1/projects/${project.id}`, { token: w.admin.token, body: { repo_url: "acme/theirs", name: "Renamed" } });
    expect(refused.status).toBe(422);
    expect(refused.body.error.message).toMatch(/^repo_url: acme\/theirs is not covered by an active Stagely GitHub App installation of this team/);
    const [unchanged] = await db.select().from(projects).where(eq(projects.id, project.id));
    expect(unchanged).toMatchObject({ repoUrl: project.repoUrl, name: project.name, githubInstallationId: project.githubInstallationId });

    const ours = await seedInstallation(w.team.id, ["acme/ours"]);
    const moved = await call("PATCH", `/v1/projects/${project.id}`, { token: w.admin.token, body: { repo_url: "https://github.com/Acme/Ours" } });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body.repo_url).toBe("https://github.com/acme/ours");
    const [row] = await db.select().from(projects).where(eq(projects.id, project.id));
    expect(row!.githubInstallationId).toBe(ours.id);
    expect((await call("PATCH", `/v1/projects/${project.id}`, { token: w.outsider.token, body: { repo_url: "acme/ours" } })).status).toBe(404);
  });

  it("updates settings, re-checking the cloud provider's team", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const provider = await seedCloudProvider(w.team.id);
    const updated = await call("PATCH", `/v1/projects/${project.id}`, { token: w.admin.token, body: { cloud_provider_id: provider.id, fork_previews: true } });
    expect(updated.body).toMatchObject({ cloud_provider_id: provider.id, fork_previews: true });
    const foreign = await seedCloudProvider(w.otherTeam.id);
    expect((await call("PATCH", `/v1/projects/${project.id}`, { token: w.admin.token, body: { cloud_provider_id: foreign.id } })).status).toBe(422);
    const [row] = await db.select().from(projects).where(eq(projects.id, project.id));
    expect(row!.cloudProviderId).toBe(provider.id);
  });

  it("keeps a project whose cloud provider is deleted, with no provider", async () => {
    const w = await seedWorld();
    const provider = await seedCloudProvider(w.team.id);
    const project = await seedProject(w.team.id, { cloudProviderId: provider.id });
    expect((await call("DELETE", `/v1/cloud-providers/${provider.id}`, { token: w.admin.token })).status).toBe(204);
    const fetched = await call("GET", `/v1/projects/${project.id}`, { token: w.viewer.token });
    expect(fetched.body).toMatchObject({ cloud_provider_id: null, team_id: w.team.id });
  });

  it("refuses to delete a project with live previews (their VMs would leak), then deletes it", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const [environment] = await db
      .insert(environments)
      .values({ id: newId("environment"), projectId: project.id, prNumber: 3, branchName: "b", commitHash: "c", subdomainHash: newSubdomainHash(), size: "small", region: "x", status: "building" })
      .returning();
    const refused = await call("DELETE", `/v1/projects/${project.id}`, { token: w.admin.token });
    expect(refused.status).toBe(409);
    await db.update(environments).set({ status: "reaped" }).where(eq(environments.id, environment!.id));
    expect((await call("DELETE", `/v1/projects/${project.id}`, { token: w.admin.token })).status).toBe(204);
    expect((await call("GET", `/v1/projects/${project.id}`, { token: w.admin.token })).status).toBe(404);
    expect(await db.select().from(auditLogs).where(eq(auditLogs.resourceId, project.id))).toEqual([expect.objectContaining({ action: "project.deleted" })]);
  });

  it("lists a team's projects with pagination", async () => {
    const w = await seedWorld();
    for (let i = 0; i < 3; i++) await seedProject(w.team.id);
    const first = await call("GET", `/v1/teams/${w.team.slug}/projects?limit=2`, { token: w.viewer.token });
    const second = await call("GET", `/v1/teams/${w.team.slug}/projects?limit=2&cursor=${first.body.next_cursor}`, { token: w.viewer.token });
    const ids = [...first.body.data, ...second.body.data].map((p: { id: string }) => p.id);
    expect(new Set(ids).size).toBe(3);
    expect((await call("GET", `/v1/teams/${w.team.slug}/projects?limit=500`, { token: w.viewer.token })).status).toBe(400);
  });
});
