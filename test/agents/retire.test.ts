import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { agentConnections, buildJobs, buildLogs } from "../../src/db/schema.ts";
import { Logger } from "../../src/lib/logger.ts";
import { pipelineContext } from "../../src/pipeline/context.ts";
import { retireAgents } from "../../src/pipeline/effects.ts";
import { runReaper } from "../../src/pipeline/reaper.ts";
import { db } from "../db.ts";
import { connectAndHello, connectRequest, createAgent, logLines, QUEUED, stubOf, waitFor } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const context = () => pipelineContext(env, new Logger("error"));

async function revokedAt(agentId: string) {
  const [row] = await db.select({ revokedAt: agentConnections.revokedAt }).from(agentConnections).where(eq(agentConnections.agentId, agentId));
  return row!.revokedAt;
}

/** What is left in the agent's Durable Object storage: its identity, its tables, its alarm. */
function storageOf(agentId: string) {
  return runInDurableObject(stubOf(agentId), async (_instance, state) => ({
    identity: state.storage.kv.get("identity"),
    tables: state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name <> 'sqlite_sequence'")
      .toArray()
      .map((r) => r.name),
    alarm: await state.storage.getAlarm(),
  }));
}

/**
 * The agent's Durable Object as the platform behaves when it cannot be reached for a moment (overloaded, reset by a
 * deploy): the next stub handed out answers `revoke` with an error. Later stubs are the real ones.
 */
function failNextRevoke() {
  return vi.spyOn(env.AGENTS, "get").mockImplementationOnce(() => ({ revoke: () => Promise.reject(new Error("Durable Object is overloaded")) }) as never);
}

describe("retiring an agent", () => {
  it("stores what it received, then deletes the agent's storage and alarm", async () => {
    const agent = await createAgent("builder");
    const client = await connectAndHello(agent);
    client.send({ type: "LOG", job_id: agent.build_job_id, lines: logLines(1, 30) });
    await waitFor(async () => (await stubOf(agent.agent_id).getState())!.pending_log_lines === 30);
    await stubOf(agent.agent_id).revoke("the build is over");
    expect((await client.closed).code).toBe(4003);
    expect(await db.select().from(buildLogs).where(eq(buildLogs.buildJobId, agent.build_job_id!))).toHaveLength(30);
    expect(await storageOf(agent.agent_id)).toEqual({ identity: undefined, tables: [], alarm: null });
    expect(await stubOf(agent.agent_id).getState()).toBeNull();
    expect((await connectRequest(agent.token)).status).toBe(401);
  });

  it("keeps the storage of a revoked agent until its events are delivered", async () => {
    const send = vi.spyOn(env.JOBS, "send").mockRejectedValue(new Error("queue unavailable"));
    const agent = await createAgent("builder");
    const client = await connectAndHello(agent);
    client.send({ type: "STATUS", job_id: agent.build_job_id, state: "completed", exit_code: 0 });
    await waitFor(async () => send.mock.calls.length === 1);
    await stubOf(agent.agent_id).revoke();
    expect((await storageOf(agent.agent_id)).identity).toMatchObject({ revoked: true });
    send.mockResolvedValue(QUEUED);
    await runInDurableObject(stubOf(agent.agent_id), (_instance, state) => state.storage.kv.put("retryAt", Date.now() - 1));
    await runDurableObjectAlarm(stubOf(agent.agent_id));
    expect(send).toHaveBeenCalledTimes(3);
    expect(await storageOf(agent.agent_id)).toEqual({ identity: undefined, tables: [], alarm: null });
  });

  it("retries a revocation that failed, through the queue, until the token is refused", async () => {
    const agent = await createAgent("builder");
    failNextRevoke();
    await retireAgents(await context(), [agent.agent_id], "the build is over");
    // The first call failed; the agent.retire message the queue delivers (to this Worker's consumer) revokes it.
    await waitFor(async () => (await connectRequest(agent.token)).status === 401, 15_000);
    await waitFor(async () => (await revokedAt(agent.agent_id)) !== null);
  });

  it("has the reaper revoke agents of finished jobs that are still not revoked", async () => {
    const agent = await createAgent("builder");
    await db.update(buildJobs).set({ status: "completed", completedAt: new Date() }).where(eq(buildJobs.id, agent.build_job_id!));
    const alive = await createAgent("builder");
    const report = await runReaper(await context());
    expect(report.agentsRetired).toBeGreaterThanOrEqual(1);
    expect((await connectRequest(agent.token)).status).toBe(401);
    expect(await revokedAt(agent.agent_id)).not.toBeNull();
    // A running job's agent is left alone.
    expect(await revokedAt(alive.agent_id)).toBeNull();
    const client = await connectAndHello(alive);
    client.close();
  });
});
