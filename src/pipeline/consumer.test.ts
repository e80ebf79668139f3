import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { db } from "../../test/db.ts";
import { seedCloudProvider, seedPipeline, seedProject, seedSecret, seedTeam, seedUser } from "../../test/harness.ts";
import { buildJobs, environments, workflowRuns } from "../db/schema.ts";
import worker from "../index.ts";

async function deliver(queue: string, bodies: unknown[]) {
  const batch = createMessageBatch(queue, bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body })));
  const ctx = createExecutionContext();
  await worker.queue(batch, env);
  return getQueueResult(batch, ctx);
}

describe("the pipeline's queues", () => {
  it("drops a malformed message (acknowledged, never retried) instead of failing the batch", async () => {
    const result = await deliver("stagely-jobs", [{ type: "nonsense" }, "not even an object"]);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1"]);
    expect(result.retryMessages).toEqual([]);
  });

  it("dead letters fail what they were doing: a build that could not be provisioned fails, and its run with it", async () => {
    const team = await seedTeam([{ user: await seedUser(), role: "owner" }]);
    const project = await seedProject(team.id);
    const { environment, run, job } = await seedPipeline(project.id);
    await db.update(buildJobs).set({ status: "provisioning" }).where(eq(buildJobs.id, job.id));
    const result = await deliver("stagely-jobs-dlq", [{ type: "build_job.provision", job_id: job.id }]);
    expect(result.explicitAcks).toEqual(["m0"]);
    const [failed] = await db.select().from(buildJobs).where(eq(buildJobs.id, job.id));
    expect(failed).toMatchObject({ status: "failed" });
    expect(failed!.errorMessage).toMatch(/could not provision a builder VM: gave up after repeated transient errors/);
    const [afterRun] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, run.id));
    expect(afterRun!.status).toBe("failed");
    const [afterEnvironment] = await db.select().from(environments).where(eq(environments.id, environment.id));
    expect(afterEnvironment!.status).toBe("failed");
  });

  it("fails a deploy whose run has no compose file recorded (planned before they were), instead of reading GitHub", async () => {
    const team = await seedTeam([{ user: await seedUser(), role: "owner" }]);
    const provider = await seedCloudProvider(team.id);
    const project = await seedProject(team.id, { cloudProviderId: provider.id });
    const { environment, run } = await seedPipeline(project.id);
    await db.batch([
      db.update(environments).set({ status: "deploying", cloudProviderId: provider.id }).where(eq(environments.id, environment.id)),
      db.update(workflowRuns).set({ status: "deploying" }).where(eq(workflowRuns.id, run.id)),
    ]);
    const result = await deliver("stagely-jobs", [{ type: "environment.deploy", run_id: run.id }]);
    expect(result.explicitAcks).toEqual(["m0"]);
    const [afterRun] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, run.id));
    expect(afterRun).toMatchObject({ status: "failed", errorMessage: "the run has no compose file recorded (it was planned by an older Stagely); rebuild the environment" });
    const [afterEnvironment] = await db.select().from(environments).where(eq(environments.id, environment.id));
    expect(afterEnvironment).toMatchObject({ status: "failed", vmId: null });
  });

  it("masks a failed deploy's report with the project's secrets as they are when it is handled, before storing it", async () => {
    const team = await seedTeam([{ user: await seedUser(), role: "owner" }]);
    const project = await seedProject(team.id);
    const { environment, run } = await seedPipeline(project.id);
    await db.batch([
      db.update(environments).set({ status: "deploying" }).where(eq(environments.id, environment.id)),
      db.update(workflowRuns).set({ status: "deploying" }).where(eq(workflowRuns.id, run.id)),
    ]);
    // Created after the agent's gateway masked and queued the report, so only the pipeline can mask it.
    await seedSecret(project.id, "LATE_PASSWORD", "late-deploy-secret-9f3a");
    const report = {
      type: "environment.deploy_reported",
      environment_id: environment.id,
      job_id: run.id,
      state: "failed",
      services: [{ name: "api", status: "exited", health: "unhealthy" }],
      last_lines: ["api | auth failed for late-deploy-secret-9f3a"],
    };
    expect((await deliver("stagely-jobs", [report])).explicitAcks).toEqual(["m0"]);
    const [afterRun] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, run.id));
    expect(afterRun).toMatchObject({ status: "failed", errorMessage: "the deploy failed: api: exited (unhealthy)\nLast lines of the deploy:\napi | auth failed for ***" });
  });

  it("retries a step that fails transiently, with backoff (a cloud that cannot be reached)", async () => {
    const team = await seedTeam([{ user: await seedUser(), role: "owner" }]);
    const unreachable = await seedCloudProvider(team.id, { config: { endpoint: "http://127.0.0.1:9" } });
    const result = await deliver("stagely-jobs", [{ type: "vm.terminate", cloud_provider_id: unreachable.id, instance_id: "123", region: null }]);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toEqual([expect.objectContaining({ msgId: "m0" })]);
  });
});
