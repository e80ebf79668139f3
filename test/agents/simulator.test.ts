import { exports } from "cloudflare:workers";
import { and, eq, sql as drizzleSql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startSimulatedAgent, type SimulatedAgent, type SimulatedAgentOptions } from "../../scripts/agent-sim/agent.ts";
import { buildJobs, buildLogs } from "../../src/db/schema.ts";
import { db } from "../db.ts";
import { buildCommand, connect, createAgent, mockQueue, stubOf, waitFor, type DevAgent } from "./helpers.ts";

// The simulator inside workerd: its socket goes through the Worker's fetch (tests cannot open a port).
const running: SimulatedAgent[] = [];
function simulate(agent: DevAgent, options: Partial<SimulatedAgentOptions> = {}): SimulatedAgent {
  const sim = startSimulatedAgent({
    coreUrl: "https://stagely.test",
    token: agent.token,
    log: () => {},
    openSocket: async (url, headers) => {
      const response = await exports.default.fetch(url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket", ...headers } });
      if (!response.webSocket) throw new Error(`connect refused: ${response.status}`);
      response.webSocket.accept();
      return response.webSocket;
    },
    ...options,
  });
  running.push(sim);
  return sim;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((sim) => sim.stop()));
  vi.restoreAllMocks();
});

async function job(jobId: string) {
  const [row] = await db.select().from(buildJobs).where(eq(buildJobs.id, jobId));
  return row!;
}

async function storedCounts(jobId: string) {
  const [row] = await db
    .select({ n: drizzleSql<number>`count(*)::int`, distinct: drizzleSql<number>`count(DISTINCT seq)::int` })
    .from(buildLogs)
    .where(eq(buildLogs.buildJobId, jobId));
  return row!;
}

describe("agent simulator against the real gateway", () => {
  it("runs a BUILD: running, every line stored once and masked, completed with an artifact", async () => {
    const send = mockQueue();
    const agent = await createAgent("builder", { REGISTRY_PASSWORD: "registry.local" });
    simulate(agent, { speed: Infinity, linesPerBuild: 1_200 });
    await stubOf(agent.agent_id).sendCommand(buildCommand(agent.build_job_id!));
    await waitFor(async () => (await job(agent.build_job_id!)).status === "completed", 15_000);
    const row = await job(agent.build_job_id!);
    expect(row.exitCode).toBe(0);
    expect(row.artifactUrl).toMatch(/^registry\.local\/app:abc1234@sha256:[0-9a-f]{64}$/);
    expect(await storedCounts(agent.build_job_id!)).toEqual({ n: 1_200, distinct: 1_200 });
    const [last] = await db.select({ line: buildLogs.line }).from(buildLogs).where(and(eq(buildLogs.buildJobId, agent.build_job_id!), eq(buildLogs.seq, 1_200)));
    expect(last!.line).toBe("#9 pushing ***/app:abc1234 3.4s done");
    expect(send).toHaveBeenCalledWith({ type: "build_job.finished", job_id: agent.build_job_id, status: "completed" });
  });

  it("loses and duplicates nothing when its connection is taken over mid-build and it reconnects", async () => {
    mockQueue();
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const sim = simulate(agent, { speed: 40, linesPerBuild: 3_000 }); // 2,000 lines/s
    await stubOf(agent.agent_id).sendCommand(buildCommand(jobId));
    await waitFor(async () => (await stubOf(agent.agent_id).getState())!.log_lines_stored >= 500);
    // Another connection with the same token replaces the simulator's (4000); the simulator backs off and comes back.
    const intruder = await connect(agent.token);
    await new Promise((resolve) => setTimeout(resolve, 200));
    intruder.close();
    await waitFor(async () => (await job(jobId)).status === "completed", 20_000);
    await waitFor(async () => sim.stats().unacked === 0, 5_000);
    expect(sim.stats().connects).toBeGreaterThanOrEqual(2);
    expect(await storedCounts(jobId)).toEqual({ n: 3_000, distinct: 3_000 });
  });

  it("reports a failing build, and stops on TERMINATE after reporting its job terminated", async () => {
    mockQueue();
    const failing = await createAgent("builder");
    simulate(failing, { speed: Infinity, linesPerBuild: 50, failBuilds: true });
    await stubOf(failing.agent_id).sendCommand(buildCommand(failing.build_job_id!));
    await waitFor(async () => (await job(failing.build_job_id!)).status === "failed");
    expect(await job(failing.build_job_id!)).toMatchObject({ exitCode: 2, errorMessage: "the build failed with exit code 2" });

    const terminated = await createAgent("builder");
    const sim = simulate(terminated, { speed: 1, linesPerBuild: 10_000 });
    await stubOf(terminated.agent_id).sendCommand(buildCommand(terminated.build_job_id!));
    await waitFor(async () => (await job(terminated.build_job_id!)).status === "running");
    await stubOf(terminated.agent_id).sendCommand({ type: "TERMINATE", reason: "pull request closed", grace_period_seconds: 1 });
    await sim.done;
    await waitFor(async () => (await job(terminated.build_job_id!)).status === "cancelled");
    expect((await stubOf(terminated.agent_id).getState())!.pending_commands).toBe(0);
  });

  it("answers DEPLOY with running and completed service reports, and stops for good when revoked", async () => {
    const send = mockQueue();
    const agent = await createAgent("preview");
    const sim = simulate(agent, { speed: Infinity });
    await stubOf(agent.agent_id).sendCommand({
      type: "DEPLOY",
      job_id: "dep_sim",
      images: { web: "registry.local/web:1", api: "registry.local/api:1" },
      compose_file: "services: {}\n",
    });
    await waitFor(async () => send.mock.calls.some(([event]) => (event as { state: string }).state === "completed"));
    expect(send.mock.calls.map(([event]) => (event as { state: string; services: { health: string }[] }).services.map((s) => s.health))).toEqual([
      ["starting", "starting"],
      ["healthy", "healthy"],
    ]);
    await stubOf(agent.agent_id).revoke();
    await sim.done;
    expect((await exports.default.fetch("https://stagely.test/v1/agent/connect", { headers: { Upgrade: "websocket", Authorization: `Bearer ${agent.token}` } })).status).toBe(401);
  });
});
