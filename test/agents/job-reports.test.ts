import { env } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { eq, sql as drizzleSql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { buildJobFinishedEvent } from "../../src/agents/job-events.ts";
import { buildJobs, buildLogs } from "../../src/db/schema.ts";
import { db } from "../db.ts";
import { connectAndHello, createAgent, logLines, stubOf, waitFor, type AgentClient, mockQueue, QUEUED } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

async function job(jobId: string) {
  const [row] = await db.select().from(buildJobs).where(eq(buildJobs.id, jobId));
  return row!;
}

async function settle(ms = 300) {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sends a report and waits until the object has processed it (a heartbeat sent after it is answered after it). */
async function report(client: AgentClient, message: Record<string, unknown>) {
  client.send(message);
  client.send({
    type: "HEARTBEAT",
    timestamp: new Date().toISOString(),
    uptime_seconds: 1,
    load_average: [0, 0, 0],
    memory_usage: { total_mb: 1, available_mb: 1 },
    disk_usage: { total_gb: 1, available_gb: 1 },
  });
  await client.next("HEARTBEAT_ACK");
}

describe("STATUS and ERROR update build_jobs through conditional updates", () => {
  it("running, then completed: times, exit code, artifact, and one build_job.finished event however often replayed", async () => {
    const send = mockQueue();
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);

    await report(client, { type: "STATUS", job_id: jobId, state: "pending" });
    expect((await job(jobId)).status).toBe("provisioning");

    await report(client, { type: "STATUS", job_id: jobId, state: "running" });
    const running = await job(jobId);
    expect(running.status).toBe("running");
    expect(running.startedAt).not.toBeNull();
    await report(client, { type: "STATUS", job_id: jobId, state: "running" });
    expect((await job(jobId)).updatedAt).toEqual(running.updatedAt);

    const artifact = "registry.local/app@sha256:" + "a".repeat(64);
    await report(client, { type: "STATUS", job_id: jobId, state: "completed", exit_code: 0, duration_seconds: 12.4, artifact_url: artifact });
    const done = await job(jobId);
    expect(done).toMatchObject({ status: "completed", exitCode: 0, durationSeconds: 12, artifactUrl: artifact, errorMessage: null });
    expect(done.completedAt).not.toBeNull();
    expect(done.startedAt).toEqual(running.startedAt);

    // Replays of any final report change nothing and send nothing.
    await report(client, { type: "STATUS", job_id: jobId, state: "completed", exit_code: 0, duration_seconds: 99 });
    await report(client, { type: "STATUS", job_id: jobId, state: "failed", exit_code: 1 });
    await report(client, { type: "ERROR", job_id: jobId, code: "LATE", message: "late error" });
    expect(await job(jobId)).toEqual(done);
    await settle();
    expect(send).toHaveBeenCalledTimes(1);
    const event = send.mock.calls[0]![0];
    expect(buildJobFinishedEvent.parse(event)).toEqual({ type: "build_job.finished", job_id: jobId, status: "completed" });
    client.close();
  });

  it("failed with an exit code, and a job that finishes without a running report gets its start from the duration", async () => {
    const send = mockQueue();
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    await report(client, { type: "STATUS", job_id: jobId, state: "failed", exit_code: 2, duration_seconds: 30 });
    const row = await job(jobId);
    expect(row).toMatchObject({ status: "failed", exitCode: 2, durationSeconds: 30, artifactUrl: null, errorMessage: "the build failed with exit code 2" });
    expect(row.completedAt!.getTime() - row.startedAt!.getTime()).toBe(30_000);
    await waitFor(async () => send.mock.calls.length === 1);
    expect(send.mock.calls[0]![0]).toEqual({ type: "build_job.finished", job_id: jobId, status: "failed" });
    client.close();
  });

  it("an ERROR for a job fails it with the error; terminated cancels", async () => {
    const send = mockQueue();
    const failing = await createAgent("builder");
    const a = await connectAndHello(failing);
    await report(a, { type: "ERROR", job_id: failing.build_job_id, code: "CLONE_FAILED", message: "repository not found", context: { attempt: 3 } });
    expect(await job(failing.build_job_id!)).toMatchObject({ status: "failed", errorMessage: "CLONE_FAILED: repository not found", exitCode: null });
    a.close();

    const terminated = await createAgent("builder");
    const b = await connectAndHello(terminated);
    await report(b, { type: "STATUS", job_id: terminated.build_job_id, state: "running" });
    await report(b, { type: "STATUS", job_id: terminated.build_job_id, state: "terminated" });
    const row = await job(terminated.build_job_id!);
    expect(row).toMatchObject({ status: "cancelled", errorMessage: "the agent terminated the build" });
    expect(row.durationSeconds).toBeGreaterThanOrEqual(0);
    await waitFor(async () => send.mock.calls.length === 2);
    expect(send.mock.calls.map(([e]) => e)).toEqual([
      { type: "build_job.finished", job_id: failing.build_job_id, status: "failed" },
      { type: "build_job.finished", job_id: terminated.build_job_id, status: "cancelled" },
    ]);
    b.close();
  });

  it("changes nothing on a job that already ended elsewhere (cancelled by the pipeline)", async () => {
    const send = mockQueue();
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    await db.update(buildJobs).set({ status: "cancelled", errorMessage: "superseded" }).where(eq(buildJobs.id, jobId));
    const before = await job(jobId);
    const client = await connectAndHello(agent);
    await report(client, { type: "STATUS", job_id: jobId, state: "running" });
    await report(client, { type: "STATUS", job_id: jobId, state: "completed", exit_code: 0 });
    expect(await job(jobId)).toEqual(before);
    await settle();
    expect(send).not.toHaveBeenCalled();
    client.close();
  });

  it("stores a job's log lines before reporting it finished", async () => {
    let storedAtEvent = -1;
    const send = vi.spyOn(env.JOBS, "send").mockImplementation(async () => {
      const [row] = await db.select({ n: drizzleSql<number>`count(*)::int` }).from(buildLogs).where(eq(buildLogs.buildJobId, jobId));
      storedAtEvent = row!.n;
      return QUEUED;
    });
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    client.send({ type: "LOG", job_id: jobId, lines: logLines(1, 37) });
    client.send({ type: "STATUS", job_id: jobId, state: "completed", exit_code: 0 });
    await client.next((m) => m.type === "LOG_ACK" && m.seq === 37);
    // The spy records the call before its implementation has counted the rows.
    await waitFor(async () => send.mock.calls.length === 1 && storedAtEvent !== -1);
    expect(storedAtEvent).toBe(37);
    client.close();
  });

  it("keeps an event whose queue send failed and sends it once from the alarm", async () => {
    const send = vi.spyOn(env.JOBS, "send").mockRejectedValueOnce(new Error("queue unavailable")).mockResolvedValue(QUEUED);
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    await report(client, { type: "STATUS", job_id: jobId, state: "completed", exit_code: 0 });
    expect((await job(jobId)).status).toBe("completed");
    expect(send).toHaveBeenCalledTimes(1);
    await runDurableObjectAlarm(stubOf(agent.agent_id));
    expect(send).toHaveBeenCalledTimes(2);
    expect(send.mock.calls[1]![0]).toEqual({ type: "build_job.finished", job_id: jobId, status: "completed" });
    await runDurableObjectAlarm(stubOf(agent.agent_id));
    expect(send).toHaveBeenCalledTimes(2);
    client.close();
  });

  it("refuses reports on a job that is not this agent's", async () => {
    const agent = await createAgent("builder");
    const other = await createAgent("builder");
    const client = await connectAndHello(agent);
    client.send({ type: "STATUS", job_id: other.build_job_id, state: "completed", exit_code: 0 });
    expect(await client.next()).toMatchObject({ type: "ERROR", code: "UNKNOWN_JOB" });
    expect((await job(other.build_job_id!)).status).toBe("provisioning");
    client.close();
  });
});
