import { env, exports } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { agentConnections, buildJobs, environments } from "../../src/db/schema.ts";
import { DISCONNECT_GRACE_MS, type AgentConnection } from "../../src/agents/agent-connection.ts";
import { issueAgentToken } from "../../src/agents/issue-token.ts";
import { getConfig } from "../../src/config.ts";
import { sha256Hex } from "../../src/lib/crypto.ts";
import { countRoundTrips, db } from "../db.ts";
import {
  AgentClient,
  BASE,
  connect,
  connectAndHello,
  connectRequest,
  createAgent,
  heartbeat,
  hello,
  stubOf,
  waitFor,
} from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** Moves the agent's clock back: it looks as if it last spoke `ms` ago (and last wrote to the database as long ago). */
async function silence(agentId: string, ms: number, pinged = false) {
  await runInDurableObject(stubOf(agentId), (_instance, state) => {
    const past = Date.now() - ms;
    for (const ws of state.getWebSockets()) {
      ws.serializeAttachment({ ...ws.deserializeAttachment(), lastSeenAt: past, pingedAt: pinged ? past : null });
    }
    const session = state.storage.kv.get<Record<string, unknown>>("session")!;
    state.storage.kv.put("session", { ...session, lastSeenAt: past, lastDbWriteAt: past });
  });
}

async function connectionRow(agentId: string) {
  const [row] = await db.select().from(agentConnections).where(eq(agentConnections.agentId, agentId));
  return row!;
}

describe("issueAgentToken", () => {
  it("records the agent with its token's hash and role, and makes it the job's agent", async () => {
    const builder = await createAgent("builder");
    const { agentId, token } = await issueAgentToken(env, db, { role: "builder", buildJobId: builder.build_job_id! });
    expect(agentId).toMatch(/^agt_[0-9a-z]{16}$/);
    expect(token).toMatch(new RegExp(`^stg_agt_${agentId.slice(4)}_[0-9a-f]{64}$`));
    const row = await connectionRow(agentId);
    expect(row).toMatchObject({ role: "builder", buildJobId: builder.build_job_id, environmentId: null, status: "disconnected" });
    expect(row.tokenHash).toBe(await sha256Hex(token));
    const [job] = await db.select({ agentId: buildJobs.agentId }).from(buildJobs).where(eq(buildJobs.id, builder.build_job_id!));
    expect(job!.agentId).toBe(agentId);
    expect(await stubOf(agentId).getState()).toMatchObject({ agent_id: agentId, role: "builder", build_job_id: builder.build_job_id, connected: false });
  });

  it("refuses to register a second token for the same agent", async () => {
    const agent = await createAgent("preview");
    // Through runInDurableObject: a rejecting RPC call leaks an unhandled rejection in the vitest pool (workers-sdk#14736).
    await runInDurableObject(stubOf(agent.agent_id), async (instance: AgentConnection) => {
      await expect(
        instance.register({ agentId: agent.agent_id, tokenHash: "0".repeat(64), role: "preview", buildJobId: null, environmentId: agent.environment_id }),
      ).rejects.toThrow(/already registered/);
    });
  });
});

describe("GET /v1/agent/connect: authentication before any upgrade", () => {
  it("answers 401 in the error shape, without a socket, for a missing, malformed or unknown token", async () => {
    const agent = await createAgent("builder");
    const wrongSecret = agent.token.replace(/_[0-9a-f]{64}$/, `_${"ab".repeat(32)}`);
    const unknownAgent = `stg_agt_${"z".repeat(16)}_${"cd".repeat(32)}`;
    for (const token of [null, "", "not-a-token", `${agent.token}x`, wrongSecret, unknownAgent]) {
      const response = await connectRequest(token);
      expect(response.status, String(token)).toBe(401);
      expect(response.webSocket).toBeNull();
      const body = (await response.json()) as { error: { code: string; request_id: string } };
      expect(body.error.code).toBe("UNAUTHORIZED");
      expect(JSON.stringify(body)).not.toContain(agent.token.slice(-64));
    }
    const basic = await connectRequest(null, { Authorization: `Basic ${btoa(`x:${agent.token}`)}` });
    expect(basic.status).toBe(401);
  });

  it("answers 426 to a valid token that does not ask for a WebSocket", async () => {
    const agent = await createAgent("builder");
    const response = await exports.default.fetch(`${BASE}/v1/agent/connect`, { headers: { Authorization: `Bearer ${agent.token}` } });
    expect(response.status).toBe(426);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("UPGRADE_REQUIRED");
  });

  it("accepts a valid token with no database query", async () => {
    const agent = await createAgent("builder");
    let response!: Response;
    expect(await countRoundTrips(async () => (response = await connectRequest(agent.token)))).toBe(0);
    expect(response.status).toBe(101);
    new AgentClient(response.webSocket!).close();
  });

  it("refuses a revoked agent, and revoking closes its socket", async () => {
    const agent = await createAgent("preview");
    const client = await connectAndHello(agent);
    await stubOf(agent.agent_id).revoke();
    expect((await client.closed).code).toBe(4003);
    expect((await connectRequest(agent.token)).status).toBe(401);
    await runInDurableObject(stubOf(agent.agent_id), async (instance: AgentConnection) => {
      await expect(instance.sendCommand({ type: "TERMINATE", reason: "x" })).rejects.toThrow(/revoked|retired/);
    });
    expect(await connectionRow(agent.agent_id)).toMatchObject({ status: "disconnected" });
  });

  it("tells a connected agent to stop before revoking it, once", async () => {
    const agent = await createAgent("builder");
    const client = await connectAndHello(agent);
    await stubOf(agent.agent_id).revoke("the environment ended");
    expect(await client.next("TERMINATE")).toMatchObject({ type: "TERMINATE", reason: "the environment ended", grace_period_seconds: 30 });
    expect((await client.closed).code).toBe(4003);
    await stubOf(agent.agent_id).revoke("again");
    expect(client.received.filter((m) => m.type === "TERMINATE")).toHaveLength(1);
  });
});

describe("protocol v1", () => {
  it("answers HELLO with HELLO_ACK and records the connection (status, ip, version, system info)", async () => {
    const agent = await createAgent("preview");
    const client = await connect(agent.token);
    client.send(hello(agent.agent_id, "1.4.2"));
    expect(await client.next()).toEqual({ type: "HELLO_ACK", status: "connected", agent_id: agent.agent_id, heartbeat_interval: 30 });
    const row = await waitFor(async () => {
      const r = await connectionRow(agent.agent_id);
      return r.status === "connected" && r;
    });
    expect(row).toMatchObject({ agentVersion: "1.4.2", ipAddress: "10.0.0.7", disconnectedAt: null });
    expect(row.systemInfo).toMatchObject({ hostname: "vm-1", architecture: "amd64", docker_version: "27.3.1" });
    expect(row.connectedAt).not.toBeNull();
    const [environment] = await db.select().from(environments).where(eq(environments.id, agent.environment_id));
    expect(environment!.lastHeartbeatAt).not.toBeNull();
    client.close();
  });

  it("prefers the address Cloudflare saw over the one the agent reports", async () => {
    const agent = await createAgent("builder");
    const response = await connectRequest(agent.token, { "CF-Connecting-IP": "203.0.113.9" });
    const client = new AgentClient(response.webSocket!);
    client.send(hello(agent.agent_id));
    await client.next("HELLO_ACK");
    await waitFor(async () => (await connectionRow(agent.agent_id)).ipAddress === "203.0.113.9");
    client.close();
  });

  it("refuses a HELLO for another agent id with AUTH_FAILED and a close", async () => {
    const agent = await createAgent("builder");
    const other = await createAgent("builder");
    const client = await connect(agent.token);
    client.send(hello(other.agent_id));
    expect(await client.next()).toMatchObject({ type: "ERROR", code: "AUTH_FAILED" });
    expect((await client.closed).code).toBe(4001);
  });

  it("answers another major version with VERSION_MISMATCH and closes, even if the rest of the frame differs", async () => {
    const agent = await createAgent("builder");
    for (const frame of [hello(agent.agent_id, "2.0.0"), { type: "HELLO", version: "3.1", something: "else" }]) {
      const client = await connect(agent.token);
      client.send(frame);
      expect(await client.next()).toMatchObject({ type: "ERROR", code: "VERSION_MISMATCH" });
      expect((await client.closed).code).toBe(4002);
    }
  });

  it("answers every kind of bad frame with BAD_MESSAGE and keeps the connection", async () => {
    const agent = await createAgent("builder");
    const client = await connectAndHello(agent);
    const bad: (string | ArrayBuffer)[] = [
      "{not json",
      "[]",
      "42",
      JSON.stringify({ no: "type" }),
      JSON.stringify({ type: "SELF_DESTRUCT" }),
      JSON.stringify({ type: "HEARTBEAT", timestamp: "yesterday" }),
      JSON.stringify({ type: "LOG", job_id: agent.build_job_id, lines: [{ seq: -1, stream: "stdout", timestamp: new Date().toISOString(), data: "x" }] }),
      JSON.stringify({ type: "LOG", job_id: agent.build_job_id, lines: [] }),
      JSON.stringify({ type: "STATUS", job_id: agent.build_job_id, state: "exploded" }),
      JSON.stringify({ type: "HELLO", version: 1, agent_id: agent.agent_id }),
      "x".repeat(1024 * 1024 + 10),
      new Uint8Array([1, 2, 3]).buffer,
    ];
    for (const frame of bad) {
      client.ws.send(frame);
      const error = await client.next("ERROR");
      expect(error.code, String(frame).slice(0, 40)).toBe("BAD_MESSAGE");
      expect(typeof error.message).toBe("string");
    }
    client.send(heartbeat());
    expect(await client.next()).toEqual({ type: "HEARTBEAT_ACK" });
    client.send({ type: "PONG", timestamp: new Date().toISOString() });
    client.send(heartbeat());
    expect(await client.next()).toEqual({ type: "HEARTBEAT_ACK" });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    client.close();
  });

  it("counts the 1 MiB frame limit in UTF-8 bytes, not UTF-16 units", async () => {
    const agent = await createAgent("builder");
    const client = await connectAndHello(agent);
    // 600,000 characters of two bytes each: 1.2 MB on the wire, though only 600,000 UTF-16 units.
    client.send({ ...heartbeat(), padding: "é".repeat(600_000) });
    expect(await client.next()).toMatchObject({ type: "ERROR", code: "BAD_MESSAGE", message: "frame exceeds 1048576 bytes" });
    client.send({ ...heartbeat(), padding: "é".repeat(400_000) });
    expect(await client.next()).toEqual({ type: "HEARTBEAT_ACK" });
    client.close();
  });

  it("requires HELLO before anything else", async () => {
    const agent = await createAgent("builder");
    const client = await connect(agent.token);
    client.send(heartbeat());
    expect(await client.next()).toMatchObject({ type: "ERROR", code: "HELLO_REQUIRED" });
    client.send(hello(agent.agent_id));
    await client.next("HELLO_ACK");
    client.close();
  });

  it("answers HEARTBEAT with HEARTBEAT_ACK and writes last_seen_at at most once a minute", async () => {
    const agent = await createAgent("preview");
    const client = await connectAndHello(agent);
    await waitFor(async () => (await connectionRow(agent.agent_id)).status === "connected");
    const quiet = await countRoundTrips(async () => {
      for (let i = 0; i < 5; i++) {
        client.send(heartbeat());
        await client.next("HEARTBEAT_ACK");
      }
    });
    expect(quiet).toBe(0);
    const before = (await connectionRow(agent.agent_id)).lastSeenAt!;
    await silence(agent.agent_id, 61_000);
    const due = await countRoundTrips(async () => {
      client.send(heartbeat());
      await client.next("HEARTBEAT_ACK");
      client.send(heartbeat());
      await client.next("HEARTBEAT_ACK");
    });
    expect(due).toBe(1); // agent_connections and the environment's heartbeat, in one batch
    const after = await connectionRow(agent.agent_id);
    expect(after.lastSeenAt!.getTime()).toBeGreaterThan(before.getTime());
    const state = await stubOf(agent.agent_id).getState();
    expect(state!.last_heartbeat).toMatchObject({ type: "HEARTBEAT", uptime_seconds: 42 });
    client.close();
  });

  it("sends STATUS_REQUEST on request and PING when the agent goes quiet; PONG counts as a sign of life", async () => {
    const agent = await createAgent("builder");
    const client = await connectAndHello(agent);
    expect(await stubOf(agent.agent_id).requestStatus()).toBe(true);
    await client.next("STATUS_REQUEST");
    await silence(agent.agent_id, 61_000);
    await runDurableObjectAlarm(stubOf(agent.agent_id));
    await client.next("PING");
    client.send({ type: "PONG", timestamp: new Date().toISOString() });
    await waitFor(async () => {
      const state = await stubOf(agent.agent_id).getState();
      return Date.now() - Date.parse(state!.last_seen_at!) < 5_000;
    });
    await runDurableObjectAlarm(stubOf(agent.agent_id));
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    client.close();
  });

  it("marks the agent disconnected from the alarm after 3 missed heartbeats, and stamps the environment for the reaper", async () => {
    const agent = await createAgent("preview");
    const client = await connectAndHello(agent);
    await waitFor(async () => (await connectionRow(agent.agent_id)).status === "connected");
    await silence(agent.agent_id, 91_000, true);
    await runDurableObjectAlarm(stubOf(agent.agent_id));
    expect((await client.closed).code).toBe(4008);
    const row = await connectionRow(agent.agent_id);
    expect(row.status).toBe("disconnected");
    expect(row.disconnectedAt).not.toBeNull();
    const lastSeen = row.lastSeenAt!.getTime();
    expect(Date.now() - lastSeen).toBeGreaterThanOrEqual(90_000);
    const [environment] = await db.select().from(environments).where(eq(environments.id, agent.environment_id));
    expect(environment!.lastHeartbeatAt!.getTime()).toBe(lastSeen);
    expect((await stubOf(agent.agent_id).getState())!.connected).toBe(false);
  });

  it("marks the agent disconnected a minute after it closes, and a newer connection replaces an older one", async () => {
    const agent = await createAgent("builder");
    const first = await connectAndHello(agent);
    const second = await connectAndHello(agent);
    expect((await first.closed).code).toBe(4000);
    second.send(heartbeat());
    await second.next("HEARTBEAT_ACK");
    await waitFor(async () => (await connectionRow(agent.agent_id)).status === "connected");
    second.close();
    await waitFor(async () => !(await stubOf(agent.agent_id).getState())!.connected);
    expect((await connectionRow(agent.agent_id)).status).toBe("connected");
    await silence(agent.agent_id, DISCONNECT_GRACE_MS + 1_000);
    await runDurableObjectAlarm(stubOf(agent.agent_id));
    expect(await connectionRow(agent.agent_id)).toMatchObject({ status: "disconnected" });
  });

  it("costs no database write for an agent that reconnects again and again within a minute", async () => {
    const agent = await createAgent("preview");
    const client = await connectAndHello(agent);
    await waitFor(async () => (await connectionRow(agent.agent_id)).status === "connected");
    const trips = await countRoundTrips(async () => {
      let current = client;
      for (let i = 0; i < 5; i++) {
        current.close();
        await current.closed;
        current = await connectAndHello(agent);
      }
      current.send(heartbeat());
      await current.next("HEARTBEAT_ACK");
      await runDurableObjectAlarm(stubOf(agent.agent_id));
      current.close();
      await current.closed;
    });
    expect(trips).toBe(0);
    // A HELLO that says something new (another version) is written.
    const upgraded = await connect(agent.token);
    upgraded.send(hello(agent.agent_id, "1.1.0"));
    await upgraded.next("HELLO_ACK");
    await waitFor(async () => (await connectionRow(agent.agent_id)).agentVersion === "1.1.0");
    upgraded.close();
  });

  it("answers connects beyond AGENT_CONNECTS_PER_MINUTE with 429 and Retry-After, before the upgrade", async () => {
    const agent = await createAgent("builder");
    const perMinute = getConfig(env).AGENT_CONNECTS_PER_MINUTE;
    for (let i = 0; i < perMinute; i++) {
      const response = await connectRequest(agent.token);
      expect(response.status).toBe(101);
      new AgentClient(response.webSocket!).close();
    }
    const refused = await connectRequest(agent.token);
    expect(refused.status).toBe(429);
    expect(refused.webSocket).toBeNull();
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(await refused.json()).toMatchObject({ error: { code: "RATE_LIMITED", message: expect.stringContaining("too many connects") } });
    // A bad token is refused as before, and does not count.
    expect((await connectRequest(`${agent.token.slice(0, -4)}0000`)).status).toBe(401);
    // The bucket refills: a minute later the agent may connect again.
    await runInDurableObject(stubOf(agent.agent_id), (_instance, state) => {
      const bucket = state.storage.kv.get<{ tokens: number; at: number }>("connectBucket")!;
      state.storage.kv.put("connectBucket", { ...bucket, at: bucket.at - 60_000 });
    });
    const again = await connectRequest(agent.token);
    expect(again.status).toBe(101);
    new AgentClient(again.webSocket!).close();
  });

  it("keeps its identity and session across eviction (hibernated socket keeps working)", async () => {
    const agent = await createAgent("builder");
    const client = await connectAndHello(agent);
    await evictDurableObject(stubOf(agent.agent_id));
    client.send(heartbeat());
    expect(await client.next()).toEqual({ type: "HEARTBEAT_ACK" });
    expect((await stubOf(agent.agent_id).getState())!.connected).toBe(true);
    client.close();
  });
});
