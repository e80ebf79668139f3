import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { db } from "../../test/db.ts";
import { seedProject, seedTeam, seedUser } from "../../test/harness.ts";
import { buildJobs, environments, workflowRuns } from "../db/schema.ts";
import { newId } from "../lib/ids.ts";
import { admitAndClaim } from "./quotas.ts";
import { startRun, type JobSpec } from "./runs.ts";
import { endEnvironment, settleBuildJob, settleDeploy } from "./transitions.ts";

const spec = (name: string): JobSpec => ({ name, architecture: "amd64", contextPath: ".", dockerfilePath: "Dockerfile", machine: "small", timeoutSeconds: 600 });

async function buildingRun(jobNames = ["api_amd64", "web_amd64", "worker_amd64"]) {
  const team = await seedTeam([{ user: await seedUser(), role: "owner" }]);
  const project = await seedProject(team.id);
  const { run } = await startRun(db, {
    project: { id: project.id, cloudProviderId: null, defaultPreviewSize: "small" },
    region: "local",
    prNumber: 1,
    branch: "b",
    commit: "c",
    isFork: false,
    trigger: "pr_opened",
    triggeredBy: null,
    dedupeKey: newId("workflowRun"),
    plan: { ok: true, config: {}, composeFile: "services:\n  web: {image: web}\n", jobs: jobNames.map(spec), previewSize: "small" },
    gate: sql`true`,
  });
  await admitAndClaim(db, team.id);
  const jobs = await db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, run!.id));
  await db.update(buildJobs).set({ status: "running" }).where(eq(buildJobs.workflowRunId, run!.id));
  return { team, project, runId: run!.id, environmentId: run!.environment_id, jobs };
}

const runStatus = async (id: string) => (await db.select().from(workflowRuns).where(eq(workflowRuns.id, id)))[0]!.status;
const envStatus = async (id: string) => (await db.select().from(environments).where(eq(environments.id, id)))[0]!.status;

describe("settleBuildJob", () => {
  it("fans in exactly once when the last build completes, even when all finish at the same moment", async () => {
    const { runId, environmentId, jobs } = await buildingRun();
    await db.update(buildJobs).set({ status: "completed" }).where(eq(buildJobs.workflowRunId, runId));
    const outcomes = await Promise.all([...jobs, ...jobs].map((j) => settleBuildJob(db, j.id)));
    expect(outcomes.filter((o) => o!.readyToDeploy)).toHaveLength(1);
    expect(await runStatus(runId)).toBe("deploying");
    expect(await envStatus(environmentId)).toBe("deploying");
  });

  it("does not fan in while a build is still running", async () => {
    const { runId, jobs } = await buildingRun();
    await db.update(buildJobs).set({ status: "completed" }).where(eq(buildJobs.id, jobs[0]!.id));
    expect((await settleBuildJob(db, jobs[0]!.id))!.readyToDeploy).toBe(false);
    expect(await runStatus(runId)).toBe("building");
  });

  it("fails the run on a failed build, cancels the other builds once, and fails the environment", async () => {
    const { runId, environmentId, jobs } = await buildingRun();
    await db.update(buildJobs).set({ vmId: "vm-sibling" }).where(eq(buildJobs.id, jobs[1]!.id));
    await db.update(buildJobs).set({ status: "failed", errorMessage: "exit code 1" }).where(eq(buildJobs.id, jobs[0]!.id));
    const first = await settleBuildJob(db, jobs[0]!.id);
    const again = await settleBuildJob(db, jobs[0]!.id);
    expect(first!.cancelledSiblings.map((j) => j.vm_id)).toContain("vm-sibling");
    expect(again!.cancelledSiblings).toEqual([]);
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, runId));
    expect(run).toMatchObject({ status: "failed", result: "failure", errorMessage: `build ${jobs[0]!.name} failed: exit code 1` });
    expect(await envStatus(environmentId)).toBe("failed");
  });
});

describe("settleDeploy and endEnvironment", () => {
  it("makes the environment ready once, and ends it once", async () => {
    const { runId, environmentId } = await buildingRun(["api_amd64"]);
    await db.update(buildJobs).set({ status: "completed" }).where(eq(buildJobs.workflowRunId, runId));
    const [job] = await db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, runId));
    await settleBuildJob(db, job!.id);
    expect((await settleDeploy(db, runId, true, null)).changed).toBe(true);
    expect((await settleDeploy(db, runId, false, "late failure report")).changed).toBe(false);
    const [environment] = await db.select().from(environments).where(eq(environments.id, environmentId));
    expect(environment).toMatchObject({ status: "ready" });
    expect(environment!.deployedAt).not.toBeNull();
    expect(await runStatus(runId)).toBe("completed");

    await db.update(environments).set({ vmId: "preview-vm" }).where(eq(environments.id, environmentId));
    const ended = await endEnvironment(db, { environmentId }, "terminated");
    expect(ended!.environment.vm_id).toBe("preview-vm");
    expect(await endEnvironment(db, { environmentId }, "reaped")).toBeNull();
    expect(await envStatus(environmentId)).toBe("terminated");
  });

  it("cancels the runs and builds of an environment that ends mid-build and names every builder VM", async () => {
    const { runId, environmentId, jobs } = await buildingRun();
    await db.update(buildJobs).set({ vmId: "builder-1" }).where(eq(buildJobs.id, jobs[0]!.id));
    const ended = await endEnvironment(db, { environmentId }, "terminated");
    expect(ended!.jobs.map((j) => j.vm_id)).toContain("builder-1");
    expect(await runStatus(runId)).toBe("cancelled");
    expect((await db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, runId))).every((j) => j.status === "cancelled")).toBe(true);
  });
});
