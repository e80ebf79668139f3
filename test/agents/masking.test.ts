import { env } from "cloudflare:workers";
import { asc, eq, sql as drizzleSql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { getConfig } from "../../src/config.ts";
import { associatedData } from "../../src/db/encrypted-columns.ts";
import { buildLogs, projects, secrets } from "../../src/db/schema.ts";
import { keyringFromConfig } from "../../src/lib/crypto.ts";
import { newId } from "../../src/lib/ids.ts";
import { db } from "../db.ts";
import { connectAndHello, createAgent, logLines, mockQueue, stubOf, waitFor } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** A secret created the way the secrets routes do it: the row, and the project's secrets version moved, in one batch. */
async function addSecret(projectId: string, key: string, value: string) {
  const keyring = await keyringFromConfig(getConfig(env));
  const row = { id: newId("secret"), projectId, key, scope: "global" };
  await db.batch([
    db.insert(secrets).values({ ...row, encryptedValue: await keyring.encrypt(value, associatedData.secret(row)) }),
    db.update(projects).set({ secretsChangedAt: drizzleSql`now()` }).where(eq(projects.id, projectId)),
  ]);
}

const deploy = (jobId: string) => ({ type: "DEPLOY" as const, job_id: jobId, images: { web: "registry.local/web:1" }, compose_file: "services: {}\n" });

describe("masking a build's log", () => {
  it("masks a secret created while the job runs in lines received before it existed", async () => {
    const agent = await createAgent("builder", { EXISTING: "existing-secret-value" });
    const jobId = agent.build_job_id!;
    const client = await connectAndHello(agent);
    // 500 lines: inserted at once, which also confirms the masker the object loaded for the first frame.
    client.send({ type: "LOG", job_id: jobId, lines: logLines(1, 500, (seq) => `line ${seq} existing-secret-value`) });
    await client.next((m) => m.type === "LOG_ACK" && m.seq === 500);

    await addSecret(agent.project_id, "NEW_TOKEN", "created-during-the-build");
    // Received with the masker confirmed a moment ago (it does not know the new secret yet), inserted a second later.
    client.send({ type: "LOG", job_id: jobId, lines: logLines(501, 503, (seq) => `line ${seq} uses created-during-the-build`) });
    await client.next((m) => m.type === "LOG_ACK" && m.seq === 503);

    const rows = await db.select().from(buildLogs).where(eq(buildLogs.buildJobId, jobId)).orderBy(asc(buildLogs.seq));
    expect(rows).toHaveLength(503);
    expect(rows[0]!.line).toBe("line 1 ***");
    expect(rows.slice(500).map((r) => r.line)).toEqual(["line 501 uses ***", "line 502 uses ***", "line 503 uses ***"]);
    client.close();
  });
});

describe("masking a deploy's output", () => {
  it("masks the deploy's last lines with the environment's project secrets, including one created after they arrived", async () => {
    const send = mockQueue();
    const agent = await createAgent("preview", { DATABASE_PASSWORD: "hunter2-very-secret" });
    const client = await connectAndHello(agent);
    const runId = newId("workflowRun");
    await stubOf(agent.agent_id).sendCommand(deploy(runId));
    await client.next("DEPLOY");
    const texts = ["api | connecting to postgres://app:hunter2-very-secret@db/app", "api | token late-secret-value-42 refused", "api exited with code 1"];
    client.send({ type: "LOG", job_id: runId, lines: logLines(1, texts.length, (seq) => texts[seq - 1]!) });
    expect(await client.next("LOG_ACK")).toMatchObject({ job_id: runId, seq: 3 });

    await addSecret(agent.project_id, "LATE", "late-secret-value-42");
    client.send({ type: "STATUS", job_id: runId, state: "failed", services: [{ name: "api", status: "exited", health: "unhealthy" }] });
    await waitFor(async () => send.mock.calls.some(([event]) => (event as { state?: string }).state === "failed"));
    const [failure] = send.mock.calls.map(([event]) => event as { state: string; last_lines: string[] }).filter((e) => e.state === "failed");
    expect(failure!.last_lines).toEqual(["api | connecting to postgres://app:***@db/app", "api | token *** refused", "api exited with code 1"]);
    client.close();
  });

  it("masks an agent's ERROR about a deploy job in what it reports", async () => {
    const send = mockQueue();
    const agent = await createAgent("preview", { API_KEY: "sk-live-0123456789" });
    const client = await connectAndHello(agent);
    const runId = newId("workflowRun");
    await stubOf(agent.agent_id).sendCommand(deploy(runId));
    await client.next("DEPLOY");
    client.send({ type: "LOG", job_id: runId, lines: logLines(1, 1, () => "pulling with sk-live-0123456789") });
    await client.next("LOG_ACK");
    client.send({ type: "ERROR", job_id: runId, code: "COMPOSE_FAILED", message: "compose up failed" });
    await waitFor(async () => send.mock.calls.length > 0);
    expect(send.mock.calls[0]![0]).toMatchObject({ state: "failed", last_lines: ["pulling with ***"] });
    client.close();
  });
});
