import { eq, inArray } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import type { CoreMessage } from "../../src/agents/protocol.ts";
import { buildJobs, environments, pullRequests, workflowRuns } from "../../src/db/schema.ts";
import { AgentDriver } from "../agent-driver.ts";
import { db, waitForQuiet } from "../db.ts";
import { fakeUrl } from "../fakes/urls.ts";
import { installationPayload, pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { call, seedInstallation, seedProject, seedTeam, seedUser } from "../harness.ts";
import { commentsOf, eventually, liveEnvironment, previewProject, sha } from "./helpers.ts";

// Issue 9: a repository belongs to the team whose GitHub App installation covers it. Another team can neither attach
// it, nor hear its webhooks, nor get clone tokens for it, nor read that team's installations.

type Build = Extract<CoreMessage, { type: "BUILD" }>;
const builds: Build[] = [];
const driver = new AgentDriver({ onMessage: (message) => void (message.type === "BUILD" && builds.push(message as Build)) }).start();
afterAll(() => driver.stop());

async function tokenRequests(installationId: number): Promise<unknown[]> {
  const response = await fetch(`${fakeUrl("github")}/_fake/app/installations/${installationId}`);
  return ((await response.json()) as { token_requests: unknown[] }).token_requests;
}

async function jobsOf(projectId: string) {
  return db
    .select({ id: buildJobs.id })
    .from(buildJobs)
    .innerJoin(workflowRuns, eq(workflowRuns.id, buildJobs.workflowRunId))
    .innerJoin(environments, eq(environments.id, workflowRuns.environmentId))
    .where(eq(environments.projectId, projectId));
}

async function localProvider(team: string, token: string): Promise<string> {
  const provider = await call("POST", `/v1/teams/${team}/cloud-providers`, {
    token,
    body: { name: "local", provider_type: "local", region: "local", config: { endpoint: fakeUrl("local-cloud") } },
  });
  return provider.body.id;
}

describe("another team and the first team's repository", () => {
  it("cannot attach it, hear its webhooks, get its clone tokens or read its installations", { timeout: 90_000 }, async () => {
    const first = await previewProject([sha(1)]);
    const intruder = await seedUser();
    const second = await seedTeam([{ user: intruder, role: "owner" }]);
    const secondProvider = await localProvider(second.slug, intruder.token);
    await seedInstallation(second.id, [`acme/own-${intruder.id.slice(4, 12)}`]);

    const attach = await call("POST", `/v1/teams/${second.slug}/projects`, { token: intruder.token, body: { name: "Stolen", repo_url: first.repo, cloud_provider_id: secondProvider } });
    expect(attach.status).toBe(422);
    expect(attach.body.error.message).toMatch(/is not covered by an active Stagely GitHub App installation of this team/);

    // A project made before repositories were bound to installations, even one that recorded the first team's
    // installation, is the case the issue reproduced.
    const legacy = await seedProject(second.id, { repoUrl: `https://github.com/${first.repo}`, githubInstallationId: first.installationId, cloudProviderId: secondProvider });

    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: first.repo, number: 3, sha: sha(1), installationId: first.installationId }));
    await eventually("the first team's preview", async () => (await liveEnvironment(first.projectId, 3))?.status === "ready");
    await waitForQuiet();
    expect(await db.select().from(environments).where(eq(environments.projectId, legacy.id))).toEqual([]);
    expect(await db.select().from(pullRequests).where(eq(pullRequests.projectId, legacy.id))).toEqual([]);
    const firstJobs = (await jobsOf(first.projectId)).map((j) => j.id);
    expect(builds.map((b) => b.job_id).sort()).toEqual(firstJobs.sort());
    expect(builds.every((b) => /^ghs_/.test(b.context.clone_token ?? ""))).toBe(true);
    // Every clone token: the first team's installation, the one repository, read-only.
    const cloneRequests = (await tokenRequests(first.installationId)).filter((r) => r !== null);
    expect(cloneRequests).toEqual(firstJobs.map(() => ({ repositories: [first.repo.split("/")[1]], permissions: { contents: "read" } })));
    const comments = await commentsOf(first.repo, 3);
    expect(comments.map((c) => c.body.split("\n")[0])).toEqual([`<!-- stagely:preview project=${first.projectId} -->`]);

    // Asked through the API, the legacy project's preview fails with the reason, and no token is minted for it.
    await db.insert(pullRequests).values({ projectId: legacy.id, prNumber: 3, state: "open", headSha: sha(1), headRef: "feature", lastEventAt: new Date() });
    const tokensBefore = (await tokenRequests(first.installationId)).length;
    expect((await call("POST", `/v1/projects/${legacy.id}/environments`, { token: intruder.token, body: { pr_number: 3 } })).status).toBe(202);
    const refused = await eventually("the legacy project's run to fail", async () => {
      const environment = await liveEnvironment(legacy.id, 3);
      if (!environment) return undefined;
      const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, environment.id));
      return run?.status === "failed" ? run : undefined;
    });
    expect(refused.errorMessage).toBe(
      `the Stagely GitHub App is not installed on ${first.repo} for this team (or was uninstalled or disconnected): a team admin can install it from GET /v1/teams/${second.id}/github/install-url`,
    );
    await waitForQuiet();
    expect(await jobsOf(legacy.id)).toEqual([]);
    expect((await tokenRequests(first.installationId)).length).toBe(tokensBefore);

    expect((await call("GET", `/v1/teams/${first.team.slug}/github/installations`, { token: intruder.token })).status).toBe(404);
    expect((await call("DELETE", `/v1/teams/${first.team.slug}/github/installations/${first.installationId}`, { token: intruder.token })).status).toBe(404);
    const own = await call("GET", `/v1/teams/${second.slug}/github/installations`, { token: intruder.token });
    expect(own.body.data.flatMap((i: { repositories: { full_name: string }[] }) => i.repositories.map((r) => r.full_name))).not.toContain(first.repo);
  });
});

describe("a team's installation that stops serving it", () => {
  it("suspended: a run fails with the reason and nothing is built; uninstalled: nothing starts at all", { timeout: 60_000 }, async () => {
    const project = await previewProject([sha(1)]);
    await fetch(`${fakeUrl("github")}/_fake/app/installations/${project.installationId}`, { method: "PATCH", body: JSON.stringify({ suspended: true }) });
    expect((await sendWebhook("installation", installationPayload({ action: "suspend", id: project.installationId, suspendedAt: new Date().toISOString() }))).body).toEqual({ status: "applied" });

    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 1, sha: sha(1), installationId: project.installationId }));
    const failed = await eventually("the run to fail", async () => {
      const environment = await liveEnvironment(project.projectId, 1);
      if (!environment) return undefined;
      const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, environment.id));
      return run?.status === "failed" ? run : undefined;
    });
    expect(failed.errorMessage).toMatch(/^the Stagely GitHub App installation on acme is suspended; unsuspend it/);
    await waitForQuiet();
    expect(await jobsOf(project.projectId)).toEqual([]);
    expect(await tokenRequests(project.installationId)).toEqual([]);

    await sendWebhook("installation", installationPayload({ action: "deleted", id: project.installationId }));
    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 2, sha: sha(1), installationId: project.installationId }));
    await waitForQuiet();
    expect(await liveEnvironment(project.projectId, 2)).toBeUndefined();
  });
});

describe("two projects of one team on one repository", () => {
  it("each keep their own pull request comment", { timeout: 60_000 }, async () => {
    const owner = await seedUser();
    const team = await seedTeam([{ user: owner, role: "owner" }]);
    const repo = `acme/shared-${owner.id.slice(4, 12)}`;
    const installation = await seedInstallation(team.id, [repo]);
    // No cloud provider: each run fails at once and says so in its comment.
    const ids: string[] = [];
    for (const name of ["Web", "Docs"]) {
      const created = await call("POST", `/v1/teams/${team.slug}/projects`, { token: owner.token, body: { name, repo_url: repo } });
      expect(created.status, created.text).toBe(201);
      ids.push(created.body.id);
    }
    const open = (commit: string, at: string) =>
      sendWebhook("pull_request", pullRequestPayload({ action: "synchronize", repo, number: 5, sha: commit, updatedAt: at, installationId: installation.id }));
    await open(sha(1), "2026-11-26T10:00:00Z");
    const markers = ids.map((id) => `<!-- stagely:preview project=${id} -->`);
    const firstRound = await eventually("a comment per project", async () => {
      const comments = await commentsOf(repo, 5);
      return comments.length === 2 && markers.every((m) => comments.some((c) => c.body.startsWith(m))) ? comments : undefined;
    });
    await db.update(environments).set({ githubCommentId: null }).where(inArray(environments.projectId, ids));
    await open(sha(2), "2026-11-26T10:05:00Z");
    const secondRound = await eventually("both comments updated for the push", async () => {
      const comments = await commentsOf(repo, 5);
      return comments.every((c) => c.body.includes(sha(2).slice(0, 12))) ? comments : undefined;
    });
    expect(secondRound.map((c) => c.id).sort()).toEqual(firstRound.map((c) => c.id).sort());
  });
});
