import { describe, expect, it } from "vitest";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { newId } from "../lib/ids.ts";
import { renderCloudInit, type AgentConfig } from "./cloud-init.ts";
import { providerFromRow, validateProviderCredentials } from "./factory.ts";
import { fakeAdmin, inTests, providerRow, sleep, testKeyring, testSpec } from "./testing.ts";

async function localProvider(endpoint = fakeUrl("local-cloud")) {
  const row = await providerRow("local", {}, { region: "local", config: { endpoint } });
  return { row, provider: await providerFromRow(row, await testKeyring(), inTests) };
}

function vmSpec() {
  const spec = testSpec({ region: "local" });
  const userData = renderCloudInit({
    agentId: spec.tags.agent_id,
    token: `tok_${spec.tags.agent_id}_secret`,
    coreUrl: "http://127.0.0.1:8787",
    role: "builder",
    jobId: spec.tags.job_id,
    architecture: "amd64",
    agentSha256: "0".repeat(64),
  });
  return { ...spec, userData };
}

const agents = (agentId: string) => fakeAdmin<{ started: AgentConfig[]; stopped: number }>("local-cloud", `agents?agent_id=${agentId}`);

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await read();
    if (done(value)) return value;
    await sleep(20);
  }
  throw new Error("condition not reached in 2 s");
}

describe("local provider", () => {
  it("boots a simulated VM with documentation-range addresses and starts its agent from the user data", async () => {
    const { provider } = await localProvider();
    const spec = vmSpec();
    const created = await provider.createInstance(spec);
    expect(created).toMatchObject({ state: "pending", region: "local", instanceType: "local-small", tags: spec.tags });

    const running = await waitFor(() => provider.getInstance(created.id), (i) => i.state === "running");
    expect(running.publicIp).toMatch(/^192\.0\.2\.\d+$/);
    expect(running.privateIp).toMatch(/^198\.51\.100\.\d+$/);
    const { started } = await waitFor(() => agents(spec.tags.agent_id), (a) => a.started.length > 0);
    expect(started).toEqual([
      { agent_id: spec.tags.agent_id, token: `tok_${spec.tags.agent_id}_secret`, core_url: "http://127.0.0.1:8787", role: "builder", job_id: spec.tags.job_id },
    ]);
  });

  it("never shows the user data (it holds the agent token) through its API", async () => {
    const { provider } = await localProvider();
    const spec = vmSpec();
    const { id } = await provider.createInstance(spec);
    const raw = await (await fetch(`${fakeUrl("local-cloud")}/v1/instances/${id}`)).text();
    expect(raw).not.toContain("_secret");
  });

  it("returns the same VM for a retried create and stops the agent when the VM is terminated", async () => {
    const { provider } = await localProvider();
    const spec = vmSpec();
    const first = await provider.createInstance(spec);
    expect((await provider.createInstance(spec)).id).toBe(first.id);
    await waitFor(() => agents(spec.tags.agent_id), (a) => a.started.length > 0);

    await provider.terminateInstance(first.id);
    expect((await provider.getInstance(first.id)).state).toBe("terminated");
    expect((await agents(spec.tags.agent_id)).stopped).toBe(1);
    await provider.terminateInstance(first.id);
    await provider.terminateInstance("local-0123456789abcdef");
    await expect(provider.getInstance("local-0123456789abcdef")).rejects.toMatchObject({ kind: "not_found" });
  });

  it("finds live VMs by Stagely tags", async () => {
    const { provider } = await localProvider();
    const environment_id = newId("environment");
    const a = await provider.createInstance(testSpec({ region: "local", tags: { agent_id: newId("agent"), environment_id } }));
    const b = await provider.createInstance(testSpec({ region: "local", tags: { agent_id: newId("agent"), environment_id } }));
    await provider.terminateInstance(b.id);
    expect((await provider.findInstances({ environment_id })).map((i) => i.id)).toEqual([a.id]);
  });

  it("validates by reaching the local cloud, and says so when it is not running", async () => {
    const { row } = await localProvider();
    expect(await validateProviderCredentials(row, await testKeyring(), inTests)).toEqual({ ok: true });
    const down = await localProvider("http://127.0.0.1:9");
    expect(await validateProviderCredentials(down.row, await testKeyring(), inTests)).toEqual({
      ok: false,
      error: expect.stringContaining("could not reach the local cloud"),
    });
  });

  it("answers bad requests to its API with 400 and a JSON error", async () => {
    const response = await fetch(`${fakeUrl("local-cloud")}/v1/instances`, { method: "POST", body: "{\"architecture\":\"sparc\"}" });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: "invalid_request", message: "size is required" } });
  });
});
