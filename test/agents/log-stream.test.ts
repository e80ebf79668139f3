import { env, exports } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { streamJobLogs } from "../../src/agents/log-stream.ts";
import { getConfig } from "../../src/config.ts";
import { buildJobs } from "../../src/db/schema.ts";
import { db } from "../db.ts";
import { seedPipeline, seedProject, seedTeam, seedUser } from "../harness.ts";
import { connectAndHello, createAgent, logLines, stubOf, waitFor, type AgentClient, mockQueue } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
}

/** Reads an SSE body incrementally; `events` fills as they arrive, `done` resolves when the stream closes. */
function readSse(response: Response) {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const done = (async () => {
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) return;
      buffer += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event: SseEvent = {};
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) comments.push(line);
          else {
            const [field, ...rest] = line.split(": ");
            event[field as keyof SseEvent] = rest.join(": ");
          }
        }
        if (Object.keys(event).length > 0) events.push(event);
      }
    }
  })();
  const seqs = () => events.filter((e) => e.event === "log").map((e) => Number(e.id));
  const cancel = async () => {
    done.catch(() => undefined);
    await reader.cancel();
  };
  return { events, comments, done, seqs, cancel };
}

function send(client: AgentClient, jobId: string, from: number, to: number) {
  for (let start = from; start <= to; start += 100) {
    client.send({ type: "LOG", job_id: jobId, lines: logLines(start, Math.min(to, start + 99)) });
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("streamJobLogs", () => {
  it("sends stored history, then buffered lines, then live lines, each once, and ends when the job ends", async () => {
    mockQueue();
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    send(client, jobId, 1, 500); // 500 lines: stored at once
    await client.next((m) => m.type === "LOG_ACK" && m.seq === 500);
    send(client, jobId, 501, 560); // buffered in the Durable Object (flushed about a second later)
    await waitFor(async () => (await stubOf(agent.agent_id).getState())!.pending_log_lines === 60);

    const response = await streamJobLogs(env, db, jobId, 0, { keepAliveMs: 100 });
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const sse = readSse(response);
    await waitFor(async () => sse.seqs().length === 560);

    send(client, jobId, 561, 700); // live, some overlapping the flush of the buffered ones
    send(client, jobId, 541, 600); // an agent resending lines changes nothing
    await waitFor(async () => sse.seqs().length === 700);
    client.send({ type: "STATUS", job_id: jobId, state: "completed", exit_code: 0 });
    await sse.done;

    expect(sse.seqs()).toEqual(range(1, 700));
    const line = sse.events.find((e) => e.id === "7")!;
    expect(JSON.parse(line.data!)).toEqual({ seq: 7, stream: "stderr", timestamp: "2026-01-01T00:00:00.007Z", line: "line 7" });
    expect(sse.events.at(-1)).toEqual({ event: "end", data: JSON.stringify({ status: "completed" }) });
    client.close();
  });

  it("resumes after a seq (Last-Event-ID), and for a finished job sends the rest and ends at once", async () => {
    mockQueue();
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    send(client, jobId, 1, 250);
    client.send({ type: "STATUS", job_id: jobId, state: "failed", exit_code: 1 });
    await client.next((m) => m.type === "LOG_ACK" && m.seq === 250);
    await waitFor(async () => (await db.select().from(buildJobs).where(eq(buildJobs.id, jobId)))[0]!.status === "failed");
    const sse = readSse(await streamJobLogs(env, db, jobId, 240));
    await sse.done;
    expect(sse.seqs()).toEqual(range(241, 250));
    expect(sse.events.at(-1)).toEqual({ event: "end", data: JSON.stringify({ status: "failed" }) });
    client.close();
  });

  it("waits for the job's agent, and ends when the job is ended elsewhere", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    await db.update(buildJobs).set({ agentId: null, status: "queued" }).where(eq(buildJobs.id, jobId));
    const sse = readSse(await streamJobLogs(env, db, jobId, 0, { keepAliveMs: 50, statusCheckMs: 50, waitForAgentMs: 50 }));
    await waitFor(async () => sse.comments.includes(": waiting for the job's agent"));

    await db.update(buildJobs).set({ agentId: agent.agent_id }).where(eq(buildJobs.id, jobId));
    const client = await connectAndHello(agent);
    send(client, jobId, 1, 5);
    await waitFor(async () => sse.seqs().length === 5);

    await db.update(buildJobs).set({ status: "cancelled" }).where(eq(buildJobs.id, jobId));
    await sse.done;
    expect(sse.seqs()).toEqual(range(1, 5));
    expect(sse.events.at(-1)).toEqual({ event: "end", data: JSON.stringify({ status: "cancelled" }) });
    client.close();
  });

  it("unsubscribes from the Durable Object when the client goes away (noticed at the next write to the tail)", { timeout: 60_000 }, async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    const subscribers = () =>
      runInDurableObject(stubOf(agent.agent_id), (instance) => (instance as unknown as { tails: Map<string, Set<unknown>> }).tails.get(jobId)?.size ?? 0);
    const sse = readSse(await streamJobLogs(env, db, jobId, 0, { keepAliveMs: 50 }));
    await waitFor(async () => (await subscribers()) === 1);
    await sse.cancel();
    // The object's alarm pings every tail; a cancelled one fails the write and is dropped.
    await waitFor(async () => {
      await runDurableObjectAlarm(stubOf(agent.agent_id));
      return (await subscribers()) === 0;
    }, 45_000);
    client.close();
  });
});

describe("GET /v1/jobs/:id/logs/stream", () => {
  it("lets one user have MAX_LIVE_LOG_STREAMS_PER_USER streams open and answers 429 beyond", { timeout: 60_000 }, async () => {
    const max = getConfig(env).MAX_LIVE_LOG_STREAMS_PER_USER;
    const [viewer, other] = [await seedUser(), await seedUser()];
    const team = await seedTeam([{ user: viewer, role: "viewer" }, { user: other, role: "viewer" }]);
    const project = await seedProject(team.id);
    const open = (jobId: string, token: string) =>
      exports.default.fetch(`https://stagely.test/v1/jobs/${jobId}/logs/stream`, { headers: { Authorization: `Bearer ${token}` } });
    const slots = env.LIVE_STREAM_SLOTS.get(env.LIVE_STREAM_SLOTS.idFromName(viewer.id));
    const held = () => runInDurableObject(slots, (_instance, state) => Object.keys(state.storage.kv.get<Record<string, number>>("slots") ?? {}).length);

    // A stream of a finished job ends by itself and gives its slot back.
    const { job: finished } = await seedPipeline(project.id);
    await db.update(buildJobs).set({ status: "completed" }).where(eq(buildJobs.id, finished.id));
    expect(await (await open(finished.id, viewer.token)).text()).toContain("event: end");
    await waitFor(async () => (await held()) === 0);

    // A job whose agent has not come yet: its streams stay open, waiting.
    const { job } = await seedPipeline(project.id);
    const streams = [];
    for (let i = 0; i < max; i++) {
      const response = await open(job.id, viewer.token);
      expect(response.status).toBe(200);
      streams.push(response);
    }
    const refused = await open(job.id, viewer.token);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe("15");
    expect(await refused.json()).toMatchObject({ error: { code: "RATE_LIMITED", message: expect.stringContaining(`${max} live log streams open`) } });

    // Another user has slots of their own.
    const others = await open(job.id, other.token);
    expect(others.status).toBe(200);
    await others.body!.cancel();

    // Streams that stopped writing (their client gone) stop renewing their slots, which expire after a minute.
    await runInDurableObject(slots, (_instance, state) => {
      const leases = state.storage.kv.get<Record<string, number>>("slots")!;
      state.storage.kv.put("slots", Object.fromEntries(Object.keys(leases).map((id) => [id, Date.now() - 1])));
    });
    const again = await open(job.id, viewer.token);
    expect(again.status).toBe(200);
    for (const response of [...streams, again]) await response.body!.cancel();
  });
});
