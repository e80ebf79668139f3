import { describe, expect, it } from "vitest";
import { call, seedProject, seedWorld } from "../../test/harness.ts";

describe("GET /v1/teams/:team/audit-logs", () => {
  it("shows the team's changes newest first, filtered and paginated, without secret values", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    await call("PATCH", `/v1/teams/${w.team.slug}`, { token: w.admin.token, body: { name: "Audited" } });
    await call("POST", `/v1/projects/${project.id}/secrets`, { token: w.owner.token, body: { key: "K1", value: "audit-secret-value-1" } });
    await call("POST", `/v1/projects/${project.id}/secrets`, { token: w.owner.token, body: { key: "K2", value: "audit-secret-value-2" } });
    await call("PATCH", `/v1/projects/${project.id}`, { token: w.admin.token, body: { name: "Renamed" } });

    const all = await call("GET", `/v1/teams/${w.team.slug}/audit-logs`, { token: w.admin.token });
    expect(all.body.data.map((e: { action: string }) => e.action)).toEqual(["project.updated", "secret.created", "secret.created", "team.updated"]);
    expect(all.text).not.toContain("audit-secret-value");
    expect(all.body.data[0]).toMatchObject({ actor_id: w.admin.id, actor_email: w.admin.email, project_id: project.id, team_id: w.team.id, metadata: { changed: ["name"] } });

    const secretsOnly = await call("GET", `/v1/teams/${w.team.slug}/audit-logs?action=secret.created&limit=1`, { token: w.admin.token });
    expect(secretsOnly.body.data).toHaveLength(1);
    expect(secretsOnly.body.data[0].metadata.key).toBe("K2");
    const next = await call("GET", `/v1/teams/${w.team.slug}/audit-logs?action=secret.created&limit=1&cursor=${secretsOnly.body.next_cursor}`, { token: w.admin.token });
    expect(next.body.data[0].metadata.key).toBe("K1");
    expect(next.body.next_cursor).toBeNull();

    const byActor = await call("GET", `/v1/teams/${w.team.slug}/audit-logs?actor_id=${w.owner.id}`, { token: w.admin.token });
    expect(byActor.body.data).toHaveLength(2);
    const future = await call("GET", `/v1/teams/${w.team.slug}/audit-logs?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, { token: w.admin.token });
    expect(future.body.data).toEqual([]);
    expect((await call("GET", `/v1/teams/${w.team.slug}/audit-logs?since=yesterday`, { token: w.admin.token })).status).toBe(400);
    const otherTeam = await call("GET", `/v1/teams/${w.otherTeam.slug}/audit-logs`, { token: w.outsider.token });
    expect(otherTeam.body.data).toEqual([]);
  });
});
