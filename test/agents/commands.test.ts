import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AgentConnection } from "../../src/agents/agent-connection.ts";
import { isCommandTooLarge } from "../../src/agents/protocol.ts";
import { buildCommand, connectAndHello, createAgent, stubOf, waitFor, mockQueue } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const deploy = (jobId: string) => ({
  type: "DEPLOY" as const,
  job_id: jobId,
  images: { web: "registry.local/web:1" },
  compose_file: "services:\n  web:\n    image: web\n",
  secrets: [{ key: "API_KEY", value: "sk-live-abcdefgh", scope: "global" }],
  files: [],
  lifecycle: { on_start: [] },
});

/** Messages received within a short while (to show that something is not sent). */
async function settle(ms = 300) {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

describe("commands for an offline agent", () => {
  it("are stored and delivered in order on connect, again on reconnect until acknowledged, then never again", async () => {
    const agent = await createAgent("builder");
    const jobId = agent.build_job_id!;
    const stub = stubOf(agent.agent_id);
    expect(await stub.sendCommand(buildCommand(jobId))).toMatchObject({ delivered: false });
    expect(await stub.sendCommand(buildCommand("job_secondbuild00000"))).toMatchObject({ delivered: false });
    expect(await stub.sendCommand({ type: "TERMINATE", reason: "superseded", grace_period_seconds: 10 })).toMatchObject({ delivered: false });
    expect((await stub.getState())!.pending_commands).toBe(3);

    let client = await connectAndHello(agent);
    const first = [await client.next(), await client.next(), await client.next()];
    expect(first.map((m) => [m.type, m.job_id ?? m.reason])).toEqual([
      ["BUILD", jobId],
      ["BUILD", "job_secondbuild00000"],
      ["TERMINATE", "superseded"],
    ]);
    expect(first[0]).toMatchObject({ context: { clone_token: "ghs_clone_token_value_123" }, build_config: { build_args: {}, cache_from: [] } });
    client.close();

    // Not acknowledged: delivered again on the next connection, followed by a request for the jobs' status.
    client = await connectAndHello(agent);
    const again = [await client.next(), await client.next(), await client.next(), await client.next()];
    expect(again.map((m) => m.type)).toEqual(["BUILD", "BUILD", "TERMINATE", "STATUS_REQUEST"]);

    // A STATUS for a job acknowledges its command.
    mockQueue();
    client.send({ type: "STATUS", job_id: jobId, state: "running" });
    await waitFor(async () => (await stub.getState())!.pending_commands === 2);
    client.close();

    client = await connectAndHello(agent);
    await settle();
    expect(client.received.filter((m) => m.type !== "STATUS_REQUEST").map((m) => [m.type, m.job_id ?? m.reason])).toEqual([
      ["HELLO_ACK", undefined],
      ["BUILD", "job_secondbuild00000"],
      ["TERMINATE", "superseded"],
    ]);
    // A STATUS terminated acknowledges its job and TERMINATE.
    client.send({ type: "STATUS", job_id: "job_secondbuild00000", state: "terminated" });
    await waitFor(async () => (await stub.getState())!.pending_commands === 0);
    client.close();

    client = await connectAndHello(agent);
    await settle();
    expect(client.received.filter((m) => m.type === "BUILD" || m.type === "TERMINATE")).toEqual([]);
    client.close();
  });
});

describe("commands for an online agent", () => {
  it("are sent at once, once per connection", async () => {
    const agent = await createAgent("preview");
    const client = await connectAndHello(agent);
    const stub = stubOf(agent.agent_id);
    expect(await stub.sendCommand(deploy("dep_one"))).toMatchObject({ delivered: true });
    expect(await client.next()).toMatchObject({ type: "DEPLOY", job_id: "dep_one", secrets: [{ key: "API_KEY", value: "sk-live-abcdefgh", scope: "global" }] });
    expect(await stub.sendCommand(deploy("dep_two"))).toMatchObject({ delivered: true });
    expect(await client.next()).toMatchObject({ type: "DEPLOY", job_id: "dep_two" });
    await settle();
    expect(client.all("DEPLOY")).toHaveLength(2);
    client.close();
  });

  it("keeps command bodies sealed in storage (no clone token or secret value in the clear)", async () => {
    const agent = await createAgent("builder");
    await stubOf(agent.agent_id).sendCommand(buildCommand(agent.build_job_id!));
    const stored = await runInDurableObject(stubOf(agent.agent_id), (_instance, state) =>
      state.storage.sql.exec<{ sealed: string }>("SELECT sealed FROM commands").toArray(),
    );
    expect(stored).toHaveLength(1);
    expect(stored[0]!.sealed).toMatch(/^v1\./);
    expect(stored[0]!.sealed).not.toContain("ghs_clone_token_value_123");
  });

  it("refuses invalid commands and DEPLOY for a builder; a preview agent takes BUILD (default mode builds on the preview VM)", async () => {
    const builder = await createAgent("builder");
    const preview = await createAgent("preview");
    // Through runInDurableObject: a rejecting RPC call leaks an unhandled rejection in the vitest pool (workers-sdk#14736).
    await runInDurableObject(stubOf(builder.agent_id), async (instance: AgentConnection) => {
      await expect(instance.sendCommand({ type: "BUILD", job_id: "x" } as never)).rejects.toThrow();
      await expect(instance.sendCommand(deploy("dep_x"))).rejects.toThrow(/DEPLOY is for preview agents/);
    });
    expect((await stubOf(builder.agent_id).getState())!.pending_commands).toBe(0);
    await stubOf(preview.agent_id).sendCommand(buildCommand("job_x"));
    expect((await stubOf(preview.agent_id).getState())!.pending_commands).toBe(1);
  });

  it("refuses a command over the frame limit in UTF-8 bytes with a permanent, named error, and queues nothing", async () => {
    const preview = await createAgent("preview");
    await runInDurableObject(stubOf(preview.agent_id), async (instance: AgentConnection) => {
      // 600,000 two-byte characters: under 1 MiB in UTF-16 units, 1.2 MB as the agent would receive it.
      const error = await instance.sendCommand({ ...deploy("dep_big"), compose_file: "é".repeat(600_000) }).catch((e: unknown) => e);
      expect(isCommandTooLarge(error)).toBe(true);
      expect((error as Error).message).toMatch(/^the DEPLOY command is 12\d{5} bytes, over the agent protocol's frame limit of 1048576 bytes \(compose file 1200000 bytes/);
    });
    expect((await stubOf(preview.agent_id).getState())!.pending_commands).toBe(0);
  });
});

describe("DEPLOY reports from a preview agent", () => {
  it("become one environment.deploy_reported event per new state or service health, none for a replay", async () => {
    const send = mockQueue();
    const agent = await createAgent("preview");
    const client = await connectAndHello(agent);
    await stubOf(agent.agent_id).sendCommand(deploy("dep_abc"));
    await client.next("DEPLOY");
    const services = [{ name: "web", status: "running", container_id: "c1", port: 3000, health: "starting" }];
    client.send({ type: "STATUS", job_id: "dep_abc", state: "running", services });
    client.send({ type: "STATUS", job_id: "dep_abc", state: "running", services });
    client.send({ type: "STATUS", job_id: "dep_abc", state: "running", services: [{ ...services[0], health: "healthy" }] });
    client.send({ type: "STATUS", job_id: "dep_abc", state: "completed", services: [{ ...services[0], health: "healthy" }] });
    client.send({ type: "STATUS", job_id: "dep_abc", state: "completed", services: [{ ...services[0], health: "healthy" }] });
    client.send({ type: "STATUS", job_id: "dep_unknown", state: "completed" });
    expect(await client.next("ERROR")).toMatchObject({ code: "UNKNOWN_JOB", job_id: "dep_unknown" });
    await waitFor(async () => send.mock.calls.length >= 3);
    await settle();
    expect(send.mock.calls.map(([event]) => event)).toEqual([
      { type: "environment.deploy_reported", environment_id: agent.environment_id, job_id: "dep_abc", state: "running", services, last_lines: [] },
      { type: "environment.deploy_reported", environment_id: agent.environment_id, job_id: "dep_abc", state: "running", services: [{ ...services[0], health: "healthy" }], last_lines: [] },
      { type: "environment.deploy_reported", environment_id: agent.environment_id, job_id: "dep_abc", state: "completed", services: [{ ...services[0], health: "healthy" }], last_lines: [] },
    ]);
    client.close();
  });
});
