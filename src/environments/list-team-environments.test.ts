import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { db } from "../../test/db.ts";
import { call, seedPipeline, seedProject, seedWorld } from "../../test/harness.ts";
import { environments, pullRequests } from "../db/schema.ts";

describe("GET /v1/teams/:team/environments", () => {
  it("lists the environments of every project of the team, newest first, live ones unless asked for all", async () => {
    const w = await seedWorld();
    const [web, api] = [await seedProject(w.team.id), await seedProject(w.team.id)];
    const first = await seedPipeline(web.id);
    const second = await seedPipeline(api.id);
    const ended = await seedPipeline(api.id);
    await db.update(environments).set({ status: "terminated" }).where(eq(environments.id, ended.environment.id));
    await seedPipeline((await seedProject(w.otherTeam.id)).id);

    const live = await call("GET", `/v1/teams/${w.team.slug}/environments`, { token: w.viewer.token });
    expect(live.status, live.text).toBe(200);
    expect(live.body.data.map((e: { id: string }) => e.id)).toEqual([second.environment.id, first.environment.id]);
    expect(live.body.data[0]).toMatchObject({ project_id: api.id, status: "building", pr_number: second.environment.prNumber });

    const all = await call("GET", `/v1/teams/${w.team.slug}/environments?status=all&limit=2`, { token: w.viewer.token });
    expect(all.body.data.map((e: { id: string }) => e.id)).toEqual([ended.environment.id, second.environment.id]);
    const rest = await call("GET", `/v1/teams/${w.team.slug}/environments?status=all&limit=2&cursor=${all.body.next_cursor}`, { token: w.viewer.token });
    expect(rest.body).toEqual({ data: [expect.objectContaining({ id: first.environment.id })], next_cursor: null });

    const terminated = await call("GET", `/v1/teams/${w.team.id}/environments?status=terminated`, { token: w.viewer.token });
    expect(terminated.body.data.map((e: { id: string }) => e.id)).toEqual([ended.environment.id]);
  });

  it("shows each environment's pull request title, and null when GitHub never sent one", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const titled = await seedPipeline(project.id);
    const untitled = await seedPipeline(project.id);
    const pr = { projectId: project.id, state: "open" as const, headSha: "a".repeat(40), headRef: "feature", lastEventAt: new Date() };
    await db.insert(pullRequests).values([
      { ...pr, prNumber: titled.environment.prNumber, title: "Add the cart" },
      { ...pr, prNumber: untitled.environment.prNumber, title: null },
    ]);
    const titles = (body: { data: { id: string; pr_title: string | null }[] }) => Object.fromEntries(body.data.map((e) => [e.id, e.pr_title]));
    const expected = { [titled.environment.id]: "Add the cart", [untitled.environment.id]: null };
    expect(titles((await call("GET", `/v1/teams/${w.team.slug}/environments`, { token: w.viewer.token })).body)).toEqual(expected);
    expect(titles((await call("GET", `/v1/projects/${project.id}/environments`, { token: w.viewer.token })).body)).toEqual(expected);
    expect((await call("GET", `/v1/environments/${titled.environment.id}`, { token: w.viewer.token })).body.pr_title).toBe("Add the cart");
  });

  it("rejects an unknown status and a bad cursor with 400, and another team with 404", async () => {
    const w = await seedWorld();
    const bad = await call("GET", `/v1/teams/${w.team.slug}/environments?status=sleeping`, { token: w.viewer.token });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toBe("status");
    expect((await call("GET", `/v1/teams/${w.team.slug}/environments?cursor=nope`, { token: w.viewer.token })).status).toBe(400);
    expect((await call("GET", `/v1/teams/${w.otherTeam.slug}/environments`, { token: w.viewer.token })).status).toBe(404);
  });
});
