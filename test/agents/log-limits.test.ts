import { env } from "cloudflare:workers";
import { eq, sql as drizzleSql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config.ts";
import { buildJobs, buildLogs } from "../../src/db/schema.ts";
import { db } from "../db.ts";
import { connectAndHello, createAgent, logLines, type AgentClient } from "./helpers.ts";

// vitest.config.ts sets both limits low enough to reach here.
const { MAX_LOG_LINES_PER_JOB: maxLines, MAX_LOG_BYTES_PER_JOB: maxBytes } = getConfig(env);

async function stored(jobId: string) {
  const [row] = await db
    .select({ lines: drizzleSql<number>`count(*)::int`, bytes: drizzleSql<number>`coalesce(sum(octet_length(line)), 0)::int`, top: drizzleSql<number>`coalesce(max(seq), 0)::int` })
    .from(buildLogs)
    .where(eq(buildLogs.buildJobId, jobId));
  return row!;
}

async function job(jobId: string) {
  const [row] = await db.select().from(buildJobs).where(eq(buildJobs.id, jobId));
  return row!;
}

function stream(client: AgentClient, jobId: string, from: number, to: number, text?: (seq: number) => string) {
  for (let start = from; start <= to; start += 250) client.send({ type: "LOG", job_id: jobId, lines: logLines(start, Math.min(to, start + 249), text) });
}

describe("log limits per job", () => {
  it("stores MAX_LOG_LINES_PER_JOB lines, refuses the rest, fails the job saying why, and stops its agent", { timeout: 60_000 }, async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    client.send({ type: "STATUS", job_id: jobId, state: "running" });
    stream(client, jobId, 1, maxLines + 100);
    const refused = await client.next((m) => m.type === "ERROR", 20_000);
    expect(refused).toMatchObject({ code: "LOG_LIMIT_EXCEEDED", job_id: jobId });
    expect(refused.message).toContain(`${maxLines} lines`);
    // The pipeline retires the failed job's agent: TERMINATE, then its token is refused.
    expect(await client.next("TERMINATE", 20_000)).toMatchObject({ reason: "the build is over" });
    expect(await job(jobId)).toMatchObject({ status: "failed", errorMessage: expect.stringContaining("LOG_LIMIT_EXCEEDED: the job's log reached its limit") });
    expect(await stored(jobId)).toMatchObject({ lines: maxLines, top: maxLines });
  });

  it("stops at MAX_LOG_BYTES_PER_JOB of text as well", { timeout: 60_000 }, async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    // Lines of 16 KiB in UTF-8 (4-byte characters): the limit is counted in bytes, not characters.
    const line = "🔐".repeat(4096);
    const fits = Math.floor(maxBytes / (16 * 1024));
    // Two frames: each must stay under the 1 MiB frame limit.
    client.send({ type: "LOG", job_id: jobId, lines: logLines(1, 40, () => line) });
    client.send({ type: "LOG", job_id: jobId, lines: logLines(41, fits + 5, () => line) });
    expect(await client.next("ERROR", 20_000)).toMatchObject({ code: "LOG_LIMIT_EXCEEDED", job_id: jobId });
    expect(await client.next("TERMINATE", 20_000)).toBeDefined();
    const total = await stored(jobId);
    expect(total).toMatchObject({ lines: fits, top: fits });
    expect(total.bytes).toBeLessThanOrEqual(maxBytes);
    expect((await job(jobId)).status).toBe("failed");
  });
});
