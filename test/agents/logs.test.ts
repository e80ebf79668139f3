import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { and, asc, eq, sql as drizzleSql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { readJobLogs } from "../../src/agents/job-logs.ts";
import { createMasker } from "../../src/agents/masker.ts";
import { buildLogs } from "../../src/db/schema.ts";
import { countRoundTrips, db } from "../db.ts";
import { connectAndHello, createAgent, logLines, stubOf, waitFor, type AgentClient } from "./helpers.ts";

async function storedLines(jobId: string) {
  return db.select().from(buildLogs).where(eq(buildLogs.buildJobId, jobId)).orderBy(asc(buildLogs.seq));
}

/** True once the HELLO's database write is done (so it does not count in a measurement). */
async function settled(agentId: string) {
  const rows = await db.execute<{ status: string }>(drizzleSql`SELECT status FROM agent_connections WHERE agent_id = ${agentId}`);
  return rows.rows[0]?.status === "connected";
}

/** Sends lines in batches the way an agent does. */
function stream(client: AgentClient, jobId: string, from: number, to: number, batch = 100, text?: (seq: number) => string) {
  for (let start = from; start <= to; start += batch) {
    client.send({ type: "LOG", job_id: jobId, lines: logLines(start, Math.min(to, start + batch - 1), text) });
  }
}

describe("LOG ingestion", () => {
  it("stores a batch with one multi-row insert within about a second and acknowledges it only then", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    await waitFor(async () => (await stubOf(agent.agent_id).getState())?.connected && (await settled(agent.agent_id)));
    let ack!: Record<string, unknown>;
    const trips = await countRoundTrips(async () => {
      stream(client, jobId, 1, 120, 40);
      // Not stored yet: the acknowledgement waits for the insert.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(client.all("LOG_ACK")).toEqual([]);
      expect(await stubOf(agent.agent_id).getState()).toMatchObject({ pending_log_lines: 120, log_inserts: 0 });
      const started = Date.now();
      ack = await client.next("LOG_ACK", 5_000);
      expect(Date.now() - started).toBeLessThan(2_500);
    });
    expect(ack).toEqual({ type: "LOG_ACK", job_id: jobId, seq: 120 });
    // The secrets for masking (one query) and the one insert.
    expect(trips).toBe(2);
    const rows = await storedLines(jobId);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(rows[6]).toMatchObject({ seq: 7, stream: "stderr", line: "line 7" });
    expect(rows[0]!.timestamp.toISOString()).toBe("2026-01-01T00:00:00.001Z");
    expect((await stubOf(agent.agent_id).getState())!).toMatchObject({ log_inserts: 1, log_lines_stored: 120, pending_log_lines: 0 });
    client.close();
  });

  it("inserts at once when 1000 lines are buffered, 1000 lines per insert, two inserts in flight", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    stream(client, jobId, 1, 3000, 250);
    const ack = await client.next((m) => m.type === "LOG_ACK" && m.seq === 3000, 5_000);
    expect(ack.seq).toBe(3000);
    // The cursor only moves over lines all stored: whichever insert ends first, it lands on a batch boundary.
    const acks = client.all("LOG_ACK").map((m) => m.seq as number);
    expect(acks.every((seq) => seq % 1000 === 0)).toBe(true);
    expect(acks).toEqual([...acks].sort((a, b) => a - b));
    expect((await stubOf(agent.agent_id).getState())!.log_inserts).toBe(3);
    const rows = await storedLines(jobId);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    client.close();
  });

  it("accepts the single-line form", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    client.send({ type: "LOG", job_id: jobId, seq: 1, stream: "stdout", timestamp: "2026-01-01T00:00:00+02:00", data: "hello" });
    expect(await client.next("LOG_ACK")).toEqual({ type: "LOG_ACK", job_id: jobId, seq: 1 });
    const [row] = await storedLines(jobId);
    expect(row).toMatchObject({ seq: 1, line: "hello" });
    expect(row!.timestamp.toISOString()).toBe("2025-12-31T22:00:00.000Z");
    client.close();
  });

  it("stores a resent line once and acknowledges duplicates at once", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    stream(client, jobId, 1, 50);
    stream(client, jobId, 1, 50);
    await client.next((m) => m.type === "LOG_ACK" && m.seq === 50);
    const trips = await countRoundTrips(async () => {
      stream(client, jobId, 1, 50);
      expect(await client.next("LOG_ACK")).toEqual({ type: "LOG_ACK", job_id: jobId, seq: 50 });
    });
    expect(trips).toBe(0);
    expect(await storedLines(jobId)).toHaveLength(50);
    client.close();
  });

  it("acknowledges only contiguous lines: a gap holds the cursor until it is filled", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    stream(client, jobId, 1, 10);
    stream(client, jobId, 21, 30);
    await client.next("LOG_ACK");
    expect(client.all("LOG_ACK").map((m) => m.seq)).toEqual([10]);
    expect(await storedLines(jobId)).toHaveLength(20);
    stream(client, jobId, 11, 20);
    expect(await client.next("LOG_ACK")).toMatchObject({ seq: 30 });
    expect((await storedLines(jobId)).map((r) => r.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    client.close();
  });

  it("masks the project's secret values of 8 characters or more, in stored lines and in build errors", async () => {
    const agent = await createAgent("builder", {
      DATABASE_PASSWORD: "hunter2-very-secret",
      SHORT: "abc123",
      PRIVATE_KEY: "-----BEGIN KEY-----\nMIIEowIBAAKCAQEA1234\n-----END KEY-----",
    });
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    const texts = [
      "connecting with hunter2-very-secret to the db",
      "hunter2-very-secrethunter2-very-secret",
      "short value abc123 stays",
      "key line MIIEowIBAAKCAQEA1234 leaked",
    ];
    client.send({ type: "LOG", job_id: jobId, lines: logLines(1, texts.length, (seq) => texts[seq - 1]!) });
    await client.next("LOG_ACK");
    expect((await storedLines(jobId)).map((r) => r.line)).toEqual([
      "connecting with *** to the db",
      "******",
      "short value abc123 stays",
      "key line *** leaked",
    ]);
    client.send({ type: "ERROR", job_id: jobId, code: "BUILD_FAILED", message: "login failed for hunter2-very-secret", context: {} });
    const row = await waitFor(async () => {
      const [r] = await db.execute<{ error_message: string | null }>(drizzleSql`SELECT error_message FROM build_jobs WHERE id = ${jobId}`).then((res) => res.rows);
      return r?.error_message ? r : undefined;
    });
    expect(row.error_message).toBe("BUILD_FAILED: login failed for ***");
    client.close();
  });

  it("refuses lines for a job that is not this agent's", async () => {
    const agent = await createAgent("builder");
    const other = await createAgent("builder");
    const client = await connectAndHello(agent);
    client.send({ type: "LOG", job_id: other.build_job_id, lines: logLines(1, 3) });
    expect(await client.next()).toMatchObject({ type: "ERROR", code: "UNKNOWN_JOB", job_id: other.build_job_id });
    expect(await storedLines(other.build_job_id!)).toHaveLength(0);
    client.close();
  });

  it("cuts lines longer than 16 KiB and removes what Postgres cannot store (NUL, lone surrogates)", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    const texts = ["y".repeat(20_000), "a\u0000b", "broken \ud800 pair", "emoji 🔐 kept"];
    client.send({ type: "LOG", job_id: jobId, lines: logLines(1, texts.length, (seq) => texts[seq - 1]!) });
    expect(await client.next("LOG_ACK")).toMatchObject({ seq: 4 });
    const rows = await storedLines(jobId);
    expect(rows.map((r) => r.line)).toEqual([`${"y".repeat(16 * 1024)} [truncated]`, "ab", "broken \ufffd pair", "emoji 🔐 kept"]);
    client.close();
  });

  it("loses no line and stores none twice across eviction and reconnects (counted end to end)", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const total = 2_345;
    // The agent side: everything not yet acknowledged is kept and resent after each reconnect.
    let acked = 0;
    let client = await connectAndHello(agent);
    const track = (c: AgentClient) => c.ws.addEventListener("message", (e) => {
      const m = JSON.parse(e.data as string) as { type: string; seq?: number };
      if (m.type === "LOG_ACK") acked = Math.max(acked, m.seq!);
    });
    track(client);

    stream(client, jobId, 1, 700, 100);
    await waitFor(async () => acked >= 500);
    // Lines 501-700 are buffered in the object's storage when it is evicted with its socket closed.
    await evictDurableObject(stubOf(agent.agent_id), { webSockets: "close" });
    await client.closed.catch(() => undefined);

    client = await connectAndHello(agent);
    track(client);
    stream(client, jobId, acked + 1, 1500, 100);
    await evictDurableObject(stubOf(agent.agent_id)); // hibernates: the socket survives, memory does not
    stream(client, jobId, 1501, total, 100);
    client.close();

    client = await connectAndHello(agent);
    track(client);
    stream(client, jobId, acked + 1, total, 100);
    await runDurableObjectAlarm(stubOf(agent.agent_id));
    await waitFor(async () => acked === total, 10_000);

    const counts = await db
      .select({ n: drizzleSql<number>`count(*)::int`, distinctSeqs: drizzleSql<number>`count(DISTINCT seq)::int`, maxSeq: drizzleSql<number>`max(seq)::int` })
      .from(buildLogs)
      .where(eq(buildLogs.buildJobId, jobId));
    expect(counts[0]).toEqual({ n: total, distinctSeqs: total, maxSeq: total });
    const state = (await stubOf(agent.agent_id).getState())!;
    expect(state.pending_log_lines).toBe(0);
    client.close();
  });
});

describe("readJobLogs", () => {
  it("pages by seq with a cursor, in one query per page", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    stream(client, jobId, 1, 25);
    await client.next((m) => m.type === "LOG_ACK" && m.seq === 25);

    let page!: Awaited<ReturnType<typeof readJobLogs>>;
    expect(await countRoundTrips(async () => (page = await readJobLogs(db, jobId, { limit: 10 })))).toBe(1);
    expect(page.data.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(page.data[0]).toEqual({ seq: 1, stream: "stdout", timestamp: "2026-01-01T00:00:00.001Z", line: "line 1" });
    expect(page.next_cursor).toBe("10");
    const second = await readJobLogs(db, jobId, { afterSeq: 20, limit: 10 });
    expect(second.data.map((l) => l.seq)).toEqual([21, 22, 23, 24, 25]);
    expect(second.next_cursor).toBeNull();
    const exact = await readJobLogs(db, jobId, { afterSeq: 15, limit: 10 });
    expect(exact.data).toHaveLength(10);
    expect(exact.next_cursor).toBeNull();
    expect((await readJobLogs(db, "job_doesnotexist0000")).data).toEqual([]);
    const rows = await db.select().from(buildLogs).where(and(eq(buildLogs.buildJobId, jobId), eq(buildLogs.seq, 1)));
    expect(rows).toHaveLength(1);
    client.close();
  });
});

describe("createMasker", () => {
  it("masks longest values first and ignores short ones", () => {
    const mask = createMasker(["password-one", "password-one-two", "short"]);
    expect(mask("a password-one-two b password-one c short")).toBe("a *** b *** c short");
    expect(createMasker([])("unchanged")).toBe("unchanged");
  });
});
