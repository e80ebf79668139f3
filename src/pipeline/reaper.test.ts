import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { AgentDriver } from "../../test/agent-driver.ts";
import { db } from "../../test/db.ts";
import { eventually, liveEnvironment, previewProject, runningVms, sha } from "../../test/e2e/helpers.ts";
import { pullRequestPayload, sendWebhook } from "../../test/github-webhooks.ts";
import { ageProject } from "../../test/time-travel.ts";
import { auditLogs, buildJobs, environments } from "../db/schema.ts";
import { Logger } from "../lib/logger.ts";
import { pipelineContext } from "./context.ts";
import { runReaper } from "./reaper.ts";

// While `agentsComeUp` is false, VMs boot but their agent never dials in (a crashed or unreachable VM).
let agentsComeUp = true;
const driver = new AgentDriver({}, () => agentsComeUp);
driver.start();
afterAll(() => driver.stop());

const reap = async () => runReaper(await pipelineContext(env, new Logger("error")));

async function openPreview(commits = [sha(1)], options: Parameters<typeof previewProject>[1] = {}) {
  const project = await previewProject(commits, options);
  await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 1, sha: commits[0]!, installationId: project.installationId }));
  return project;
}

describe("the reaper", () => {
  it("leaves a healthy preview alone, and reaps it once its agent has been silent for 15 minutes", { timeout: 60_000 }, async () => {
    const { projectId, providerId } = await openPreview();
    const ready = await eventually("ready", async () => ((await liveEnvironment(projectId, 1))?.status === "ready" ? liveEnvironment(projectId, 1) : undefined));
    await db.update(environments).set({ lastHeartbeatAt: new Date() }).where(eq(environments.id, ready!.id));
    await reap();
    expect((await liveEnvironment(projectId, 1))!.status).toBe("ready");

    await ageProject(projectId, 16);
    const report = await reap();
    expect(report.environments).toBeGreaterThanOrEqual(1);
    expect((await liveEnvironment(projectId, 1))!.status).toBe("reaped");
    const [audit] = await db.select().from(auditLogs).where(eq(auditLogs.resourceId, ready!.id));
    expect(audit).toMatchObject({ action: "environment.reaped", actorId: null });
    expect(audit!.metadata).toEqual({ reason: "no heartbeat for 15 minutes" });
    await eventually("its VMs terminated", async () => (await runningVms(providerId, { environment_id: ready!.id })).length === 0);
  });

  it("reaps environments past their time to live", { timeout: 60_000 }, async () => {
    const { projectId } = await openPreview();
    await eventually("ready", async () => (await liveEnvironment(projectId, 1))?.status === "ready");
    await db.execute(sql`UPDATE environments SET last_heartbeat_at = now() WHERE project_id = ${projectId}`);
    await ageProject(projectId, 25 * 60);
    await db.execute(sql`UPDATE environments SET last_heartbeat_at = now() WHERE project_id = ${projectId}`);
    await reap();
    const environment = await liveEnvironment(projectId, 1);
    expect(environment!.status).toBe("reaped");
  });

  it("fails builds whose builder never came up (registry mode), fails the run with them, and terminates their VMs", { timeout: 60_000 }, async () => {
    agentsComeUp = false;
    const { projectId, providerId } = await openPreview([sha(1)], { registry: "registry.example.test" });
    const environment = await eventually("builder VMs", async () => {
      const found = await liveEnvironment(projectId, 1);
      if (!found) return undefined;
      const jobs = await db.select().from(buildJobs).where(sql`${buildJobs.workflowRunId} IN (SELECT id FROM workflow_runs WHERE environment_id = ${found.id})`);
      return jobs.length === 2 && jobs.every((j) => j.vmId) ? found : undefined;
    });
    expect((await runningVms(providerId, { environment_id: environment.id })).length).toBe(2);

    await reap();
    expect((await liveEnvironment(projectId, 1))!.status).toBe("building");
    await ageProject(projectId, 21);
    const report = await reap();
    expect(report.builds).toBe(1); // the first failure fails the run, which cancels the other build
    await eventually("the environment to fail", async () => (await liveEnvironment(projectId, 1))?.status === "failed");
    const jobs = await db.select().from(buildJobs).where(sql`${buildJobs.workflowRunId} IN (SELECT id FROM workflow_runs WHERE environment_id = ${environment.id})`);
    expect(jobs.map((j) => j.status).sort()).toEqual(["cancelled", "failed"]);
    await eventually("the builders terminated", async () => (await runningVms(providerId, { environment_id: environment.id })).length === 0);
    // Only now: the driver decides when it first sees a VM, so turning agents back on earlier races with it.
    agentsComeUp = true;
  });

  it("schedules waiting work whose scheduling was lost: a queued build is claimed once the team has room", { timeout: 60_000 }, async () => {
    agentsComeUp = false;
    const { projectId } = await openPreview([sha(1)], { quota: { builds: 1 } });
    const jobs = async () =>
      (
        await db.execute<{ id: string; status: string }>(sql`
          SELECT j.id, j.status FROM build_jobs j JOIN workflow_runs r ON r.id = j.workflow_run_id JOIN environments e ON e.id = r.environment_id
           WHERE e.project_id = ${projectId} ORDER BY j.status`)
      ).rows;
    // Two builds, one slot: one holds it (its VM's agent never dials in), the other waits.
    const [holder] = await eventually("one build holding the slot", async () => {
      const found = await jobs();
      return found.map((j) => j.status).join() === "provisioning,queued" ? found : undefined;
    });
    // The slot frees without the step that would schedule the team (as when that step was lost).
    await db.update(buildJobs).set({ status: "failed", completedAt: new Date() }).where(eq(buildJobs.id, holder!.id));
    expect((await jobs()).map((j) => j.status)).toEqual(["failed", "queued"]);

    await reap();
    await eventually("the queued build claimed", async () => (await jobs()).map((j) => j.status).join() === "failed,provisioning");
    agentsComeUp = true;
  });
});
