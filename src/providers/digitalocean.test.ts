import { describe, expect, it } from "vitest";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { providerFromRow } from "./factory.ts";
import { fakeAdmin, injectFailure, inTests, providerRow, recordedRequests, testKeyring, testSpec } from "./testing.ts";

interface FakeDroplet {
  id: number;
  name: string;
  size: string;
  image: string;
  region: string;
  tags: string[];
  deleted: boolean;
  user_data: string;
}

async function setup(options: { account?: Record<string, unknown>; config?: Record<string, unknown> } = {}) {
  const { token } = await fakeAdmin<{ token: string }>("digitalocean", "accounts", options.account ?? {});
  const row = await providerRow("digitalocean", { api_token: token }, { region: "fra1", config: { endpoint: fakeUrl("digitalocean"), ...options.config } });
  const provider = await providerFromRow(row, await testKeyring(), inTests);
  return {
    provider,
    token,
    requests: async () => recordedRequests("digitalocean", token),
    droplets: async () => (await fakeAdmin<{ droplets: FakeDroplet[] }>("digitalocean", `accounts/${token}/droplets`)).droplets,
    fail: (failure: Parameters<typeof injectFailure>[2]) => injectFailure("digitalocean", token, failure),
  };
}

const doSpec = (overrides: Parameters<typeof testSpec>[0] = {}) => testSpec({ region: "fra1", ...overrides });

describe("DigitalOcean: createInstance", () => {
  it("creates a tagged droplet with the user data, authenticated with the bearer token", async () => {
    const { provider, token, requests, droplets } = await setup({ account: { boot_ms: 60_000 } });
    const spec = doSpec({ tags: { agent_id: "agt_do00000000000001", environment_id: "env_do00000000000001" }, idempotencyKey: "agt_do00000000000001" });
    const instance = await provider.createInstance(spec);

    expect(instance).toMatchObject({ state: "pending", region: "fra1", instanceType: "s-2vcpu-4gb" });
    expect(instance.tags).toEqual({ agent_id: "agt_do00000000000001", environment_id: "env_do00000000000001" });
    const [droplet] = await droplets();
    expect(droplet).toMatchObject({
      id: Number(instance.id),
      name: "stagely-agt-do00000000000001",
      size: "s-2vcpu-4gb",
      image: "ubuntu-24-04-x64",
      region: "fra1",
      user_data: spec.userData,
      tags: ["stagely:managed", "stagely:agent:agt_do00000000000001", "stagely:environment:env_do00000000000001"],
    });
    const calls = await requests();
    expect(calls.map((r) => r.operation)).toEqual(["GET /v2/droplets", "POST /v2/droplets", "GET /v2/droplets"]);
    expect(calls.every((r) => r.headers.authorization === `Bearer ${token}`)).toBe(true);
    expect(calls[0]!.path).toContain("tag_name=stagely%3Aagent%3Aagt_do00000000000001");
  });

  it("refuses arm64 without calling DigitalOcean", async () => {
    const { provider, requests } = await setup();
    await expect(provider.createInstance(doSpec({ architecture: "arm64" }))).rejects.toMatchObject({ kind: "unsupported", message: expect.stringContaining("arm64") });
    expect(await requests()).toEqual([]);
  });

  it("takes sizes and the image from the provider's config", async () => {
    const { provider, droplets } = await setup({ config: { sizes: { amd64: { xlarge: "c-32" } }, image: "ubuntu-22-04-x64" } });
    await provider.createInstance(doSpec({ size: "xlarge" }));
    expect((await droplets())[0]).toMatchObject({ size: "c-32", image: "ubuntu-22-04-x64" });
  });

  it("returns the existing droplet when a create is retried, without creating another", async () => {
    const { provider, requests, droplets } = await setup();
    const spec = doSpec();
    const first = await provider.createInstance(spec);
    const before = (await requests()).length;
    const second = await provider.createInstance(spec);
    expect(second.id).toBe(first.id);
    expect((await requests()).slice(before).map((r) => r.operation)).toEqual(["GET /v2/droplets"]);
    expect(await droplets()).toHaveLength(1);
  });

  it("makes one droplet when the answer to a create was lost and the create is retried", async () => {
    const { provider, fail, droplets } = await setup();
    const spec = doSpec();
    await fail({ match: "POST /v2/droplets", mode: "drop_response" });
    await expect(provider.createInstance(spec)).rejects.toMatchObject({ kind: "transient" });
    const retried = await provider.createInstance(spec);
    const all = await droplets();
    expect(all).toHaveLength(1);
    expect(retried.id).toBe(String(all[0]!.id));
  });

  it("converges on one droplet when several attempts of the same create race past the lookup", async () => {
    const { provider, droplets } = await setup();
    const spec = doSpec();
    const results = await Promise.all(Array.from({ length: 4 }, () => provider.createInstance(spec)));
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    const live = (await droplets()).filter((d) => !d.deleted);
    expect(live.map((d) => String(d.id))).toEqual([results[0]!.id]);
  });
});

describe("DigitalOcean: getInstance, terminateInstance, findInstances", () => {
  it("reports a booted droplet as running with its public and private addresses", async () => {
    const { provider } = await setup();
    const created = await provider.createInstance(doSpec());
    const instance = await provider.getInstance(created.id);
    expect(instance.state).toBe("running");
    expect(instance.publicIp).toMatch(/^198\.51\.100\./);
    expect(instance.privateIp).toMatch(/^10\./);
    await expect(provider.getInstance("999999999999")).rejects.toMatchObject({ kind: "not_found" });
    await expect(provider.getInstance("abc")).rejects.toMatchObject({ kind: "not_found" });
  });

  it("deletes idempotently", async () => {
    const { provider, requests, droplets } = await setup();
    const created = await provider.createInstance(doSpec());
    await provider.terminateInstance(created.id);
    await provider.terminateInstance(created.id);
    await provider.terminateInstance("999999999999");
    await provider.terminateInstance("../account");
    expect((await droplets())[0]!.deleted).toBe(true);
    expect((await requests()).filter((r) => r.method === "DELETE")).toHaveLength(3);
    await expect(provider.getInstance(created.id)).rejects.toMatchObject({ kind: "not_found" });
  });

  it("pages through every Stagely droplet, following only the page number of DigitalOcean's links", async () => {
    const { provider, token, requests } = await setup({ account: { page_size: 2 } });
    const environment_id = "env_dofind000000001";
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await provider.createInstance(doSpec({ tags: { agent_id: `agt_dofind00000000${i}`, environment_id } })));
    await fakeAdmin("digitalocean", `accounts/${token}/droplets`, { tags: ["stagely:environment:env_dofind000000001"] });

    const before = (await requests()).length;
    const found = await provider.findInstances({ environment_id });
    expect(found.map((i) => i.id).sort()).toEqual(created.map((i) => i.id).sort());
    const pages = (await requests()).slice(before);
    expect(pages.map((r) => new URLSearchParams(r.path.split("?")[1]).get("page"))).toEqual(["1", "2", "3"]);
    expect((await provider.findInstances()).length).toBe(5);
  });
});

describe("DigitalOcean: validateCredentials and errors", () => {
  it("validates with the account endpoint; a wrong token is invalid_credentials and never shown", async () => {
    const { provider, requests } = await setup();
    await provider.validateCredentials();
    expect((await requests()).map((r) => r.operation)).toEqual(["GET /v2/account"]);

    const badToken = "dop_v1_0000000000000000000000000000000000000000000000000000000000000000";
    const row = await providerRow("digitalocean", { api_token: badToken }, { region: "fra1", config: { endpoint: fakeUrl("digitalocean") } });
    const error = await (await providerFromRow(row, await testKeyring(), inTests)).validateCredentials().catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: "invalid_credentials", code: "Unauthorized" });
    expect((error as Error).message).not.toContain(badToken);
  });

  it("classifies a read-only token, the droplet limit, rate limits, server errors and bad input", async () => {
    const readOnly = await setup({ account: { read_only: true } });
    await expect(readOnly.provider.createInstance(doSpec())).rejects.toMatchObject({ kind: "invalid_credentials" });

    const limited = await setup({ account: { droplet_limit: 1 } });
    await limited.provider.createInstance(doSpec());
    await expect(limited.provider.createInstance(doSpec())).rejects.toMatchObject({ kind: "quota_exceeded", message: expect.stringContaining("droplet limit") });
    await expect(limited.provider.createInstance(doSpec({ region: "mars1" }))).rejects.toMatchObject({ kind: "unsupported", message: expect.stringContaining("region") });

    const reset = String(Math.floor(Date.now() / 1000) + 30);
    await limited.fail({ match: "GET /v2/droplets", status: 429, code: "too_many_requests", message: "API Rate limit exceeded.", headers: { "ratelimit-reset": reset } });
    const rateLimited = await limited.provider.findInstances().catch((e: unknown) => e);
    expect(rateLimited).toMatchObject({ kind: "rate_limited", retryable: true });
    expect((rateLimited as { retryAfterSeconds: number }).retryAfterSeconds).toBeGreaterThanOrEqual(28);

    await limited.fail({ match: "GET /v2/droplets", status: 503, code: "service_unavailable", message: "Service Unavailable" });
    await expect(limited.provider.findInstances()).rejects.toMatchObject({ kind: "transient" });
    await limited.fail({ match: "GET /v2/droplets", mode: "reset" });
    await expect(limited.provider.findInstances()).rejects.toMatchObject({ kind: "transient" });
  });

  it("refuses user data over DigitalOcean's 64 KiB before calling it", async () => {
    const { provider, requests } = await setup();
    await expect(provider.createInstance(doSpec({ userData: "x".repeat(64 * 1024 + 1) }))).rejects.toMatchObject({ kind: "unsupported" });
    expect(await requests()).toEqual([]);
  });
});
