import { describe, expect, it } from "vitest";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { providerFromRow } from "./factory.ts";
import { fakeAdmin, injectFailure, inTests, providerRow, recordedRequests, testKeyring, testSpec } from "./testing.ts";

interface FakeServer {
  id: number;
  name: string;
  server_type: string;
  image: string;
  location: string;
  labels: Record<string, string>;
  deleted: boolean;
  user_data: string;
}

async function setup(options: { account?: Record<string, unknown>; config?: Record<string, unknown> } = {}) {
  const { token } = await fakeAdmin<{ token: string }>("hetzner", "accounts", options.account ?? {});
  const row = await providerRow("hetzner", { api_token: token }, { region: "fsn1", config: { endpoint: fakeUrl("hetzner"), ...options.config } });
  const provider = await providerFromRow(row, await testKeyring(), inTests);
  return {
    provider,
    token,
    requests: async () => recordedRequests("hetzner", token),
    servers: async () => (await fakeAdmin<{ servers: FakeServer[] }>("hetzner", `accounts/${token}/servers`)).servers,
    fail: (failure: Parameters<typeof injectFailure>[2]) => injectFailure("hetzner", token, failure),
  };
}

const hzSpec = (overrides: Parameters<typeof testSpec>[0] = {}) => testSpec({ region: "fsn1", ...overrides });

describe("Hetzner: createInstance", () => {
  it("creates a labelled server with the user data, authenticated with the bearer token", async () => {
    const { provider, token, requests, servers } = await setup({ account: { boot_ms: 60_000 } });
    const spec = hzSpec({ tags: { agent_id: "agt_hz00000000000001", job_id: "job_hz00000000000001" }, idempotencyKey: "agt_hz00000000000001" });
    const instance = await provider.createInstance(spec);

    expect(instance).toMatchObject({ state: "pending", region: "fsn1", instanceType: "cx23", tags: { agent_id: "agt_hz00000000000001", job_id: "job_hz00000000000001" } });
    expect(instance.publicIp).toMatch(/^203\.0\.113\./);
    expect((await servers())[0]).toMatchObject({
      id: Number(instance.id),
      name: "stagely-agt-hz00000000000001",
      server_type: "cx23",
      image: "ubuntu-24.04",
      location: "fsn1",
      user_data: spec.userData,
      labels: { "stagely/managed": "true", "stagely/agent": "agt_hz00000000000001", "stagely/job": "job_hz00000000000001" },
    });
    const calls = await requests();
    expect(calls.map((r) => r.operation)).toEqual(["GET /v1/servers", "POST /v1/servers"]);
    expect(calls.every((r) => r.headers.authorization === `Bearer ${token}`)).toBe(true);
    expect(decodeURIComponent(calls[0]!.path)).toContain("label_selector=stagely/managed=true,stagely/agent=agt_hz00000000000001");
    expect(calls[1]!.body).toMatchObject({ start_after_create: true });
  });

  it("uses Arm server types for arm64, and says unsupported where Hetzner has none", async () => {
    const { provider } = await setup();
    expect((await provider.createInstance(hzSpec({ architecture: "arm64", size: "large" }))).instanceType).toBe("cax31");
    await expect(provider.createInstance(hzSpec({ architecture: "arm64", region: "ash" }))).rejects.toMatchObject({ kind: "unsupported", code: "resource_unavailable" });
  });

  it("returns the existing server when a create is retried, without creating another", async () => {
    const { provider, requests, servers } = await setup();
    const spec = hzSpec();
    const first = await provider.createInstance(spec);
    const before = (await requests()).length;
    expect((await provider.createInstance(spec)).id).toBe(first.id);
    expect((await requests()).slice(before).map((r) => r.operation)).toEqual(["GET /v1/servers"]);
    expect(await servers()).toHaveLength(1);
  });

  it("makes one server when the answer to a create was lost and the create is retried", async () => {
    const { provider, fail, servers } = await setup();
    const spec = hzSpec();
    await fail({ match: "POST /v1/servers", mode: "drop_response" });
    await expect(provider.createInstance(spec)).rejects.toMatchObject({ kind: "transient" });
    const retried = await provider.createInstance(spec);
    expect((await servers()).map((s) => String(s.id))).toEqual([retried.id]);
  });

  it("returns the first server when attempts race past the lookup (the name is unique per project)", async () => {
    const { provider, requests, servers } = await setup();
    const spec = hzSpec();
    const results = await Promise.all(Array.from({ length: 3 }, () => provider.createInstance(spec)));
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(await servers()).toHaveLength(1);
    expect((await requests()).filter((r) => r.operation === "POST /v1/servers").length).toBeGreaterThanOrEqual(1);
  });
});

describe("Hetzner: getInstance, terminateInstance, findInstances", () => {
  it("reports a booted server as running", async () => {
    const { provider } = await setup();
    const created = await provider.createInstance(hzSpec());
    expect(await provider.getInstance(created.id)).toMatchObject({ id: created.id, state: "running", region: "fsn1" });
    await expect(provider.getInstance("1")).rejects.toMatchObject({ kind: "not_found", code: "not_found" });
    await expect(provider.getInstance("1; DROP")).rejects.toMatchObject({ kind: "not_found" });
  });

  it("deletes idempotently", async () => {
    const { provider, servers } = await setup();
    const created = await provider.createInstance(hzSpec());
    await provider.terminateInstance(created.id);
    await provider.terminateInstance(created.id);
    await provider.terminateInstance("1");
    await provider.terminateInstance("");
    expect((await servers())[0]!.deleted).toBe(true);
  });

  it("pages through every Stagely server matching the filter, and skips others", async () => {
    const { provider, token, requests } = await setup({ account: { page_size: 2 } });
    const environment_id = "env_hzfind000000001";
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await provider.createInstance(hzSpec({ tags: { agent_id: `agt_hzfind00000000${i}`, environment_id } })));
    await fakeAdmin("hetzner", `accounts/${token}/servers`, { labels: { "stagely/environment": environment_id } });

    const before = (await requests()).length;
    const found = await provider.findInstances({ environment_id });
    expect(found.map((i) => i.id).sort()).toEqual(created.map((i) => i.id).sort());
    expect((await requests()).slice(before)).toHaveLength(3);
    expect((await provider.findInstances({ agent_id: "agt_hzfind000000003" })).map((i) => i.id)).toEqual([created[3]!.id]);
  });
});

describe("Hetzner: validateCredentials and errors", () => {
  it("validates with a one-item list; a wrong token is invalid_credentials and never shown", async () => {
    const { provider } = await setup();
    await provider.validateCredentials();
    const badToken = "x".repeat(64);
    const row = await providerRow("hetzner", { api_token: badToken }, { region: "fsn1", config: { endpoint: fakeUrl("hetzner") } });
    const error = await (await providerFromRow(row, await testKeyring(), inTests)).validateCredentials().catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: "invalid_credentials", code: "unauthorized" });
    expect((error as Error).message).not.toContain(badToken);
  });

  it("classifies a read-only token, the server limit, rate limits, maintenance and bad input", async () => {
    const readOnly = await setup({ account: { read_only: true } });
    await readOnly.provider.validateCredentials();
    await expect(readOnly.provider.createInstance(hzSpec())).rejects.toMatchObject({ kind: "invalid_credentials", code: "forbidden" });

    const limited = await setup({ account: { server_limit: 1 } });
    await limited.provider.createInstance(hzSpec());
    await expect(limited.provider.createInstance(hzSpec())).rejects.toMatchObject({ kind: "quota_exceeded", code: "resource_limit_exceeded" });
    await expect(limited.provider.createInstance(hzSpec({ region: "mars1" }))).rejects.toMatchObject({ kind: "unsupported", code: "invalid_input" });

    await limited.fail({ match: "GET /v1/servers", status: 429, code: "rate_limit_exceeded", message: "limit of 3600 requests per hour reached", headers: { "retry-after": "17" } });
    await expect(limited.provider.findInstances()).rejects.toMatchObject({ kind: "rate_limited", retryAfterSeconds: 17 });
    await limited.fail({ match: "GET /v1/servers", status: 503, code: "maintenance", message: "cannot perform operation due to maintenance" });
    await expect(limited.provider.findInstances()).rejects.toMatchObject({ kind: "transient", code: "maintenance" });
    await limited.fail({ match: "GET /v1/servers", mode: "reset" });
    await expect(limited.provider.findInstances()).rejects.toMatchObject({ kind: "transient" });
  });
});
