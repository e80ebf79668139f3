import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLogs, environments, pullRequests, workflowRuns } from "../../src/db/schema.ts";
import { db, waitForQuiet } from "../db.ts";
import { pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { call, seedInstallation, seedTeam, seedUser } from "../harness.ts";
import { eventually, liveEnvironment, sha } from "./helpers.ts";

// Issue 9: is_fork is a property of the pull request's head repository, decided from GitHub's data, sticky, and never
// set from a user's request; a member must not be able to make a fork's code look trusted (and so get the secrets).

/** A team whose project builds forks; no cloud provider, so every run fails at once (what matters is the environment). */
async function forkProject() {
  const owner = await seedUser();
  const member = await seedUser();
  const team = await seedTeam([
    { user: owner, role: "owner" },
    { user: member, role: "member" },
  ]);
  const repo = `acme/forks-${owner.id.slice(4, 12)}`;
  const installation = await seedInstallation(team.id, [repo]);
  const created = await call("POST", `/v1/teams/${team.slug}/projects`, { token: owner.token, body: { name: "Web", repo_url: repo, fork_previews: true } });
  expect(created.status, created.text).toBe(201);
  const projectId = created.body.id as string;
  const event = (number: number, input: { action?: string; commit?: string; at?: string; headRepo?: string | null } = {}) =>
    sendWebhook(
      "pull_request",
      pullRequestPayload({ action: input.action ?? "opened", repo, number, sha: input.commit ?? sha(1), updatedAt: input.at, headRepo: input.headRepo, installationId: installation.id }),
    );
  const runsOf = async (number: number) => {
    const environment = await liveEnvironment(projectId, number);
    return environment ? db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, environment.id)) : [];
  };
  return { owner, member, team, repo, projectId, event, runsOf };
}

describe("is_fork", () => {
  it("comes from the head repository: another one's, or a deleted fork's, is a fork", async () => {
    const project = await forkProject();
    await project.event(1, { headRepo: "someone/fork" });
    await project.event(2, { headRepo: null });
    await project.event(3);
    const forkOf = async (number: number) => (await eventually(`PR ${number}'s environment`, () => liveEnvironment(project.projectId, number)))!.isFork;
    expect([await forkOf(1), await forkOf(2), await forkOf(3)]).toEqual([true, true, false]);
  });

  it("stays true once GitHub said so, whatever a member asks through the API", async () => {
    const project = await forkProject();
    await project.event(4, { headRepo: "someone/fork", at: "2026-11-26T10:00:00Z" });
    await eventually("the fork's environment", async () => (await liveEnvironment(project.projectId, 4))?.isFork === true);
    const asked = await call("POST", `/v1/projects/${project.projectId}/environments`, { token: project.member.token, body: { pr_number: 4 } });
    expect(asked.status, asked.text).toBe(202);
    // The answer names the pull request's environment and the run to follow, at URLs that answer.
    const live = (await liveEnvironment(project.projectId, 4))!;
    expect(asked.body).toEqual({ status: "queued", environment: { id: live.id, url: `/v1/environments/${live.id}` }, run: { id: expect.stringMatching(/^run_/), url: `/v1/runs/${asked.body.run.id}` } });
    const run = await eventually("the member's run", async () => {
      const got = await call("GET", asked.body.run.url, { token: project.member.token });
      return got.status === 200 ? got.body : undefined;
    });
    expect(run).toMatchObject({ environment_id: live.id, trigger: "api_requested" });
    expect((await call("GET", asked.body.environment.url, { token: project.member.token })).status).toBe(200);
    await eventually("the member's run", async () => (await project.runsOf(4)).length === 2);
    expect((await liveEnvironment(project.projectId, 4))!.isFork).toBe(true);
    // Nor does a later event that looks like the base repository's (GitHub never changes a pull request's head repository).
    await project.event(4, { action: "synchronize", commit: sha(2), at: "2026-11-26T10:05:00Z" });
    await eventually("the push's run", async () => (await project.runsOf(4)).length === 3);
    expect((await liveEnvironment(project.projectId, 4))!.isFork).toBe(true);
    const [recorded] = await db.select().from(pullRequests).where(eq(pullRequests.projectId, project.projectId));
    expect(recorded).toMatchObject({ prNumber: 4, isFork: true, headSha: sha(2) });
  });

  it("of a fork's pull request keeps it from being previewed through the API when the project does not build forks", async () => {
    const project = await forkProject();
    await project.event(5, { headRepo: "someone/fork" });
    await eventually("the fork's environment", async () => (await liveEnvironment(project.projectId, 5))?.isFork === true);
    await call("PATCH", `/v1/projects/${project.projectId}`, { token: project.owner.token, body: { fork_previews: false } });
    expect((await call("POST", `/v1/projects/${project.projectId}/environments`, { token: project.member.token, body: { pr_number: 5 } })).status).toBe(202);
    await waitForQuiet();
    expect(await project.runsOf(5)).toHaveLength(1);
  });
});

describe("POST /v1/projects/:id/environments", () => {
  it("previews only a pull request GitHub told Stagely about, open, at its head; refusals change nothing", async () => {
    const project = await forkProject();
    await project.event(6, { commit: sha(6) });
    await eventually("PR 6 recorded", async () => (await db.select().from(pullRequests).where(eq(pullRequests.projectId, project.projectId))).length === 1);
    await project.event(7, { action: "closed" });
    await eventually("PR 7 recorded", async () => (await db.select().from(pullRequests).where(eq(pullRequests.projectId, project.projectId))).length === 2);
    const audits = async () => (await db.select().from(auditLogs).where(eq(auditLogs.action, "environment.requested"))).length;
    const before = await audits();
    const ask = (body: Record<string, unknown>) => call("POST", `/v1/projects/${project.projectId}/environments`, { token: project.member.token, body });

    for (const [body, message] of [
      [{ pr_number: 99 }, "pull request #99 is not known for this project: Stagely previews pull requests GitHub has told it about (through the App's webhooks)"],
      [{ pr_number: 7 }, "pull request #7 is closed"],
      [{ pr_number: 6, commit_hash: sha(66) }, `commit_hash must be the head of pull request #6 as GitHub last reported it (${sha(6)}); leave it out to preview the head`],
      [{ pr_number: 6, branch: "other" }, "branch must be the head branch of pull request #6 (feature); leave it out to preview the head"],
    ] as const) {
      const refused = await ask(body);
      expect(refused.status, JSON.stringify(body)).toBe(422);
      expect(refused.body.error.message).toBe(message);
    }
    expect(await audits()).toBe(before);

    expect((await ask({ pr_number: 6, branch: "feature", commit_hash: sha(6) })).status).toBe(202);
    expect(await audits()).toBe(before + 1);
    const runs = await eventually("the requested run", async () => {
      const found = await project.runsOf(6);
      return found.some((r) => r.trigger === "api_requested") ? found : undefined;
    });
    expect(runs.find((r) => r.trigger === "api_requested")!.commitHash).toBe(sha(6));
    const environment = await liveEnvironment(project.projectId, 6);
    expect(environment).toMatchObject({ branchName: "feature", isFork: false });
    expect(await db.select().from(environments).where(eq(environments.projectId, project.projectId))).toHaveLength(1);
  });
});
