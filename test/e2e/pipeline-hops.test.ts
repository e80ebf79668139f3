import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { eq, inArray } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { buildJobs, environments, workflowRuns } from "../../src/db/schema.ts";
import worker from "../../src/index.ts";
import { db } from "../db.ts";
import type { AgentConfig } from "../../src/providers/cloud-init.ts";
import { connect, hello } from "../agents/helpers.ts";
import { fakeUrl } from "../fakes/urls.ts";
import { eventually, previewProject, pullRequestMessage, runningVms, sha } from "./helpers.ts";

/** Hands one batch to the consumer, as the queue would, and waits for it to be handled. */
async function deliver(body: unknown) {
  const batch = createMessageBatch("stagely-jobs", [{ id: "m0", timestamp: new Date(), attempts: 1, body }]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env);
  return getQueueResult(batch, ctx);
}


describe("webhook → BUILD in one queue hop", () => {
  it("registry mode: provisions a pull request's builders in the message that planned the run; the delayed fallback then does nothing", async () => {
    const { repo, projectId, providerId, installationId } = await previewProject([sha(3)], { registry: "registry.example.test" });
    expect((await deliver(pullRequestMessage(repo, installationId, { pr_number: 11, head_sha: sha(3) }))).explicitAcks).toEqual(["m0"]);
    const [environment] = await db.select().from(environments).where(eq(environments.projectId, projectId));
    const runs = await db.select({ id: workflowRuns.id }).from(workflowRuns).where(eq(workflowRuns.environmentId, environment!.id));
    const jobs = await db.select().from(buildJobs).where(inArray(buildJobs.workflowRunId, runs.map((r) => r.id)));
    expect(jobs.length).toBeGreaterThan(0);
    // Every builder VM exists once this one message is handled: no build_job.provision hop was needed.
    for (const job of jobs) expect(job).toMatchObject({ status: "provisioning", vmId: expect.any(String), agentId: expect.any(String) });
    const vms = await runningVms(providerId, { environment_id: environment!.id });
    expect(vms.map((vm) => vm.id).sort()).toEqual(jobs.map((j) => j.vmId).sort());

    // The fallback message, delivered later, finds each VM recorded and changes nothing.
    for (const job of jobs) expect((await deliver({ type: "build_job.provision", job_id: job.id })).explicitAcks).toEqual(["m0"]);
    expect((await runningVms(providerId, { environment_id: environment!.id })).length).toBe(jobs.length);
    const after = await db.select().from(buildJobs).where(inArray(buildJobs.id, jobs.map((j) => j.id)));
    expect(after.map((j) => [j.id, j.vmId, j.agentId]).sort()).toEqual(jobs.map((j) => [j.id, j.vmId, j.agentId]).sort());
  });

  it("default mode: creates the preview VM and queues every BUILD at its agent in that message; the fallback sends no BUILD twice", async () => {
    const { repo, projectId, providerId, installationId } = await previewProject([sha(3)]);
    expect((await deliver(pullRequestMessage(repo, installationId, { pr_number: 11, head_sha: sha(3) }))).explicitAcks).toEqual(["m0"]);
    const [environment] = await db.select().from(environments).where(eq(environments.projectId, projectId));
    expect(environment!.vmId).toEqual(expect.any(String));
    const runs = await db.select({ id: workflowRuns.id }).from(workflowRuns).where(eq(workflowRuns.environmentId, environment!.id));
    const jobs = await db.select().from(buildJobs).where(inArray(buildJobs.workflowRunId, runs.map((r) => r.id)));
    expect(jobs.length).toBeGreaterThan(1);
    for (const job of jobs) expect((await deliver({ type: "build_job.provision", job_id: job.id })).explicitAcks).toEqual(["m0"]);
    expect((await runningVms(providerId, { environment_id: environment!.id })).map((vm) => vm.id)).toEqual([environment!.vmId]);

    // The preview VM boots (50 ms after it was made, a timer in the local cloud), its agent dials in and finds one
    // BUILD per job, each job once.
    const config = await eventually("the preview VM to boot", async () => {
      const { started } = (await (await fetch(`${fakeUrl("local-cloud")}/_fake/agents`)).json()) as { started: AgentConfig[] };
      return started.find((c) => c.role === "preview" && c.environment_id === environment!.id);
    });
    const agent = await connect(config.token);
    agent.send(hello(config.agent_id, "1.1.0"));
    for (const _ of jobs) await agent.next("BUILD");
    await new Promise((resolve) => setTimeout(resolve, 300));
    agent.close();
    expect(agent.all("BUILD").map((m) => m.job_id).sort()).toEqual(jobs.map((j) => j.id).sort());
  });
});
