import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { db } from "../../test/db.ts";
import { seedProject, seedTeam, seedUser } from "../../test/harness.ts";
import { buildJobs, environments, pullRequests, teams, workflowRuns } from "../db/schema.ts";
import { eventIsCurrent, recordPullRequestEvent, recordPullRequestTitle, type PullRequestEvent } from "./pull-requests.ts";
import { admitAndClaim } from "./quotas.ts";
import { startRun, type JobSpec, type RunPlan } from "./runs.ts";

const jobs: JobSpec[] = [
  { name: "api_amd64", architecture: "amd64", contextPath: "./api", dockerfilePath: "./api/Dockerfile", machine: "medium", timeoutSeconds: 1800 },
  { name: "api_arm64", architecture: "arm64", contextPath: "./api", dockerfilePath: "./api/Dockerfile", machine: "medium", timeoutSeconds: 1800 },
  { name: "web_amd64", architecture: "amd64", contextPath: "./web", dockerfilePath: "./web/Dockerfile", machine: "small", timeoutSeconds: 600 },
];
const composeFile = 'services:\n  web: {image: web, ports: ["80:3000"]}\n';
const plan: RunPlan = { ok: true, config: { version: 2 }, composeFile, jobs, previewSize: "large" };

async function setup(quota: { environments?: number; builds?: number } = {}) {
  const team = await seedTeam([{ user: await seedUser(), role: "owner" }]);
  await db.update(teams).set({ maxConcurrentEnvironments: quota.environments ?? 5, maxConcurrentBuilds: quota.builds ?? 10 }).where(eq(teams.id, team.id));
  const project = await seedProject(team.id);
  return { team, project };
}

function event(projectId: string, action: PullRequestEvent["action"], sha: string, at: string, prNumber = 7): PullRequestEvent {
  return { projectId, action, prNumber, headSha: sha, headRef: "feature", title: "Add the cart", isFork: false, updatedAt: at };
}

function runFor(project: { id: string; cloudProviderId: string | null; defaultPreviewSize: "medium" }, e: PullRequestEvent, runPlan: RunPlan = plan) {
  return startRun(
    db,
    {
      project,
      region: "nbg1",
      prNumber: e.prNumber,
      branch: e.headRef,
      commit: e.headSha,
      isFork: e.isFork,
      trigger: e.action === "synchronize" ? "pr_synchronized" : "pr_opened",
      triggeredBy: "octocat",
      dedupeKey: `${e.projectId}:${e.prNumber}:${e.updatedAt}`,
      plan: runPlan,
      gate: eventIsCurrent(e),
    },
    [recordPullRequestEvent(db, e)],
  );
}

const admitEnvironments = async (teamId: string) => (await admitAndClaim(db, teamId)).admitted;
const claimBuildSlots = async (teamId: string) => (await admitAndClaim(db, teamId)).claimed;

describe("startRun", () => {
  it("creates the environment, the run and one job per build × platform, once however often it is delivered", async () => {
    const { team, project } = await setup();
    const opened = event(project.id, "opened", "sha1", "2026-11-26T10:00:00Z");
    const first = await runFor(project as never, opened);
    expect(first.run!.status).toBe("pending");
    expect(await admitEnvironments(team.id)).toHaveLength(1);
    const again = await runFor(project as never, opened);
    expect(again.run!.id).toBe(first.run!.id);
    const envs = await db.select().from(environments).where(eq(environments.projectId, project.id));
    expect(envs).toHaveLength(1);
    expect(envs[0]).toMatchObject({ status: "building", size: "large", region: "nbg1", commitHash: "sha1" });
    const created = await db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, first.run!.id));
    expect(created.map((j) => j.name).sort()).toEqual(["api_amd64", "api_arm64", "web_amd64"]);
    expect(again.run!.status).toBe("building");
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, first.run!.id));
    expect(run).toMatchObject({ config: { version: 2 }, composeFile });
  });

  it("supersedes the running run on a push and ignores late or reordered deliveries", async () => {
    const { team, project } = await setup();
    const opened = event(project.id, "opened", "sha1", "2026-11-26T10:00:00Z");
    const pushed = event(project.id, "synchronize", "sha2", "2026-11-26T10:05:00Z");
    const first = await runFor(project as never, opened);
    await admitEnvironments(team.id);
    await db.update(buildJobs).set({ status: "running", vmId: "vm-1" }).where(eq(buildJobs.name, "api_amd64"));
    const second = await runFor(project as never, pushed);
    expect(second.superseded.map((j) => j.vm_id)).toContain("vm-1");
    const [old] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, first.run!.id));
    expect(old).toMatchObject({ status: "cancelled", result: "cancelled" });
    expect((await db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, first.run!.id))).every((j) => j.status === "cancelled")).toBe(true);

    const late = await runFor(project as never, opened);
    expect(late.run!.id).toBe(first.run!.id);
    expect(late.superseded).toEqual([]);
    const [current] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, second.run!.id));
    expect(current!.status).toBe("building");
    const [environment] = await db.select().from(environments).where(eq(environments.projectId, project.id));
    expect(environment!.commitHash).toBe("sha2");
  });

  it("keeps the title of the latest event: an edit renames, an older delivery never renames back, a push an edit overtook is still built", async () => {
    const { project } = await setup();
    const titleOf = async (prNumber = 7) => (await db.select().from(pullRequests).where(eq(pullRequests.projectId, project.id))).find((p) => p.prNumber === prNumber)?.title;
    await runFor(project as never, { ...event(project.id, "opened", "sha1", "2026-11-26T10:00:00Z"), title: "Add the cart" });
    expect(await titleOf()).toBe("Add the cart");
    await recordPullRequestTitle(db, { projectId: project.id, prNumber: 7, title: "Add the cart and taxes", updatedAt: "2026-11-26T10:10:00Z" });
    expect(await titleOf()).toBe("Add the cart and taxes");
    // A push from before the edit, delivered after it: built, without its older title.
    const pushed = await runFor(project as never, { ...event(project.id, "synchronize", "sha2", "2026-11-26T10:05:00Z"), title: "Add the cart" });
    const [pushedRun] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, pushed.run!.id));
    expect(pushedRun).toMatchObject({ commitHash: "sha2", trigger: "pr_synchronized" });
    expect(await titleOf()).toBe("Add the cart and taxes");
    await recordPullRequestTitle(db, { projectId: project.id, prNumber: 7, title: "stale", updatedAt: "2026-11-26T10:07:00Z" });
    expect(await titleOf()).toBe("Add the cart and taxes");
    await recordPullRequestTitle(db, { projectId: project.id, prNumber: 7, title: "Add the cart and taxes", updatedAt: "2026-11-26T10:10:00Z" });
    expect(await titleOf()).toBe("Add the cart and taxes");
    // An edit of a pull request Stagely never recorded (a fork it does not build) records nothing.
    await recordPullRequestTitle(db, { projectId: project.id, prNumber: 8, title: "Fork", updatedAt: "2026-11-26T10:10:00Z" });
    expect(await titleOf(8)).toBeUndefined();
  });

  it("records a failed run with the message when stagely.yaml is missing or invalid", async () => {
    const { project } = await setup();
    const opened = event(project.id, "opened", "sha1", "2026-11-26T10:00:00Z");
    const result = await runFor(project as never, opened, { ok: false, error: "stagely.yaml: builds.api.context is required" });
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, result.run!.id));
    expect(run).toMatchObject({ status: "failed", result: "failure", errorMessage: "stagely.yaml: builds.api.context is required", config: null, composeFile: null });
    const [environment] = await db.select().from(environments).where(eq(environments.projectId, project.id));
    expect(environment!.status).toBe("failed");
  });
});

describe("quotas", () => {
  it("queues environments beyond max_concurrent_environments and admits them as room frees up", async () => {
    const { team, project } = await setup({ environments: 1 });
    await runFor(project as never, event(project.id, "opened", "a", "2026-11-26T10:00:00Z", 1));
    await runFor(project as never, event(project.id, "opened", "b", "2026-11-26T10:00:00Z", 2));
    expect(await admitEnvironments(team.id)).toHaveLength(1);
    const statuses = async () => (await db.select().from(environments).where(eq(environments.projectId, project.id))).map((e) => `${e.prNumber}:${e.status}`).sort();
    expect(await statuses()).toEqual(["1:building", "2:pending"]);
    expect(await admitEnvironments(team.id)).toEqual([]);
    await db.update(environments).set({ status: "terminated" }).where(eq(environments.prNumber, 1));
    expect(await admitEnvironments(team.id)).toHaveLength(1);
    expect(await statuses()).toEqual(["1:terminated", "2:building"]);
    const runs = await db.select().from(workflowRuns).where(sql`${workflowRuns.environmentId} IN (SELECT id FROM environments WHERE pr_number = 2)`);
    expect(runs[0]!.status).toBe("building");
  });

  it("hands out build slots up to max_concurrent_builds, oldest first, never more under concurrency", async () => {
    const { team, project } = await setup({ builds: 2 });
    await runFor(project as never, event(project.id, "opened", "a", "2026-11-26T10:00:00Z", 1));
    const claims = await Promise.all(Array.from({ length: 6 }, () => claimBuildSlots(team.id)));
    expect(claims.flat()).toHaveLength(2);
    expect(new Set(claims.flat()).size).toBe(2);
    await db.update(buildJobs).set({ status: "completed" }).where(sql`${buildJobs.id} IN ${claims.flat()}`);
    expect(await claimBuildSlots(team.id)).toHaveLength(1);
    expect(await claimBuildSlots(team.id)).toEqual([]);
  });
});
