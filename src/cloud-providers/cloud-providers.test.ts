import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { call, seedCloudProvider, seedProject, seedWorld, type ApiResponse } from "../../test/harness.ts";
import { db } from "../../test/db.ts";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { getConfig } from "../config.ts";
import { associatedData } from "../db/encrypted-columns.ts";
import { buildJobs, cloudProviders, environments, workflowRuns } from "../db/schema.ts";
import { keyringFromConfig } from "../lib/crypto.ts";
import { newId, newSubdomainHash } from "../lib/ids.ts";

/** Calls the Worker as a server with STAGELY_ENV=production would run it (same database, same fakes). */
async function callInProduction(method: string, path: string, options: { token: string; body?: unknown }): Promise<ApiResponse<any>> {
  const { default: worker } = await import("../index.ts");
  const ctx = createExecutionContext();
  const headers: Record<string, string> = { Authorization: `Bearer ${options.token}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await worker.fetch(
    new Request(`https://stagely.test${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) }),
    { ...env, STAGELY_ENV: "production" },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, text, headers: response.headers };
}

async function hetznerAccount(): Promise<string> {
  const response = await fetch(`${fakeUrl("hetzner")}/_fake/accounts`, { method: "POST", body: "{}" });
  return ((await response.json()) as { token: string }).token;
}

const requestsSeenBy = async (token: string) =>
  ((await (await fetch(`${fakeUrl("hetzner")}/_fake/accounts/${token}/requests`)).json()) as { requests: unknown[] }).requests;

const aws = { access_key_id: "AKIAIOSFODNN7EXAMPLE", secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };

describe("cloud providers", () => {
  it("stores credentials encrypted for their row and shows only which fields are set and a hint", async () => {
    const w = await seedWorld();
    const created = await call("POST", `/v1/teams/${w.team.slug}/cloud-providers`, {
      token: w.admin.token,
      body: { name: "aws-main", provider_type: "aws", region: "eu-west-1", credentials: aws },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ name: "aws-main", provider_type: "aws", region: "eu-west-1", credentials: { fields: ["access_key_id", "secret_access_key"], hint: "…MPLE" } });
    expect(created.text).not.toContain(aws.secret_access_key);
    expect(created.text).not.toContain(aws.access_key_id);
    const [row] = await db.select().from(cloudProviders).where(eq(cloudProviders.id, created.body.id));
    const keyring = await keyringFromConfig(getConfig(env));
    expect(JSON.parse(await keyring.decrypt(row!.encryptedCredentials, associatedData.cloudCredentials(row!)))).toEqual(aws);
    await expect(keyring.decrypt(row!.encryptedCredentials, associatedData.cloudCredentials({ id: "cp_0000000000000000" }))).rejects.toThrow();
  });

  it("validates credentials for the provider type, naming the field, and stores nothing on error", async () => {
    const w = await seedWorld();
    const post = (body: unknown) => call("POST", `/v1/teams/${w.team.slug}/cloud-providers`, { token: w.admin.token, body });
    for (const body of [
      { name: "a", provider_type: "aws", region: "eu-west-1", credentials: { access_key_id: "short" } },
      { name: "d", provider_type: "digitalocean", region: "fra1", credentials: { access_key_id: aws.access_key_id } },
      { name: "h", provider_type: "hetzner", region: "nbg1", credentials: {} },
      { name: "g", provider_type: "gcp", region: "x", credentials: {} },
      { name: "r", provider_type: "hetzner", region: "Bad Region", credentials: { api_token: "x".repeat(40) } },
    ]) {
      const response = await post(body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.text).not.toContain(aws.access_key_id);
    }
    expect(await db.select().from(cloudProviders).where(eq(cloudProviders.teamId, w.team.id))).toEqual([]);
    expect((await post({ name: "local", provider_type: "local", region: "local" })).status).toBe(201);
    expect((await post({ name: "local", provider_type: "local", region: "local" })).status).toBe(409);
  });

  it("replaces credentials after checking them against the stored type", async () => {
    const w = await seedWorld();
    const provider = await seedCloudProvider(w.team.id);
    const bad = await call("PATCH", `/v1/cloud-providers/${provider.id}`, { token: w.admin.token, body: { credentials: aws } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toMatch(/^credentials/);
    const token = "hcloud-replacement-token-abcdefghijkl";
    const good = await call("PATCH", `/v1/cloud-providers/${provider.id}`, { token: w.admin.token, body: { credentials: { api_token: token }, name: "renamed" } });
    expect(good.body).toMatchObject({ name: "renamed", credentials: { hint: "…ijkl" }, last_validated_at: null });
    const [row] = await db.select().from(cloudProviders).where(eq(cloudProviders.id, provider.id));
    const keyring = await keyringFromConfig(getConfig(env));
    expect(JSON.parse(await keyring.decrypt(row!.encryptedCredentials, associatedData.cloudCredentials(row!)))).toEqual({ api_token: token });
  });

  it("refuses to delete an account that live environments or running builds still use", async () => {
    const w = await seedWorld();
    const provider = await seedCloudProvider(w.team.id);
    const project = await seedProject(w.team.id);
    const environmentId = newId("environment");
    const runId = newId("workflowRun");
    await db.batch([
      db.insert(environments).values({ id: environmentId, projectId: project.id, prNumber: 9, branchName: "b", commitHash: "c", subdomainHash: newSubdomainHash(), size: "small", region: "x", status: "terminated", cloudProviderId: provider.id }),
      db.insert(workflowRuns).values({ id: runId, environmentId, trigger: "pr_opened", commitHash: "c" }),
      db.insert(buildJobs).values({ id: newId("buildJob"), workflowRunId: runId, name: "api_amd64", architecture: "amd64", contextPath: ".", dockerfilePath: "Dockerfile", cloudProviderId: provider.id, status: "running" }),
    ]);
    const refused = await call("DELETE", `/v1/cloud-providers/${provider.id}`, { token: w.admin.token });
    expect(refused.status).toBe(409);
    await db.update(buildJobs).set({ status: "cancelled" }).where(eq(buildJobs.workflowRunId, runId));
    expect((await call("DELETE", `/v1/cloud-providers/${provider.id}`, { token: w.admin.token })).status).toBe(204);
  });
});

describe("config is checked for the provider type when written", () => {
  it("refuses fields the type does not take or bad values, naming them, and stores nothing", async () => {
    const w = await seedWorld();
    const provider = await seedCloudProvider(w.team.id);
    const post = (config: unknown) =>
      call("POST", `/v1/teams/${w.team.slug}/cloud-providers`, { token: w.admin.token, body: { name: "hz", provider_type: "hetzner", region: "nbg1", credentials: { api_token: "x".repeat(40) }, config } });
    for (const [config, field] of [
      [{ image: "Not An Image!" }, "config.image"],
      [{ endpoint: "ftp://api.hetzner.cloud" }, "config.endpoint"],
      [{ subnet_id: "subnet-0123456789abcdef0" }, "config"],
      [{ sizes: { amd64: { huge: "cx99" } } }, "config.sizes.amd64"],
    ] as const) {
      const created = await post(config);
      expect(created.status, created.text).toBe(400);
      expect(created.body.error.issues.map((i: { path: string }) => i.path), JSON.stringify(config)).toContain(field);
      const patched = await call("PATCH", `/v1/cloud-providers/${provider.id}`, { token: w.admin.token, body: { config } });
      expect(patched.status, patched.text).toBe(400);
      expect(patched.body.error.issues.map((i: { path: string }) => i.path)).toContain(field);
    }
    expect((await db.select().from(cloudProviders).where(eq(cloudProviders.teamId, w.team.id))).map((r) => r.id)).toEqual([provider.id]);
    const [unchanged] = await db.select().from(cloudProviders).where(eq(cloudProviders.id, provider.id));
    expect(unchanged!.config).toEqual(provider.config);

    const good = await call("PATCH", `/v1/cloud-providers/${provider.id}`, { token: w.admin.token, body: { config: { image: "debian-12", endpoint: `${fakeUrl("hetzner")}/` } } });
    expect(good.status, good.text).toBe(200);
    expect(good.body.config).toEqual({ image: "debian-12", endpoint: fakeUrl("hetzner") });
  });
});

describe("a production server", () => {
  it("refuses the local cloud and endpoint or URL overrides when they are written, with a 422 naming the field", async () => {
    const w = await seedWorld();
    const post = (body: Record<string, unknown>) => callInProduction("POST", `/v1/teams/${w.team.slug}/cloud-providers`, { token: w.admin.token, body: { name: "cloud", region: "nbg1", ...body } });
    const local = await post({ provider_type: "local", region: "local" });
    expect(local.status, local.text).toBe(422);
    expect(local.body.error.issues).toEqual([{ path: "provider_type", message: expect.stringContaining("development and tests") }]);
    const hetzner = { provider_type: "hetzner", credentials: { api_token: "x".repeat(40) } };
    const endpoint = await post({ ...hetzner, config: { endpoint: "https://attacker.example" } });
    expect(endpoint.status).toBe(422);
    expect(endpoint.body.error.issues).toEqual([{ path: "config.endpoint", message: expect.stringContaining("not allowed") }]);
    expect(await db.select().from(cloudProviders).where(eq(cloudProviders.teamId, w.team.id))).toEqual([]);

    const plain = await post({ ...hetzner, config: { image: "ubuntu-24.04" } });
    expect(plain.status, plain.text).toBe(201);
    const patched = await callInProduction("PATCH", `/v1/cloud-providers/${plain.body.id}`, { token: w.admin.token, body: { config: { endpoint: "https://attacker.example" } } });
    expect(patched.status).toBe(422);
    expect(patched.body.error.issues[0].path).toBe("config.endpoint");
    const [row] = await db.select().from(cloudProviders).where(eq(cloudProviders.id, plain.body.id));
    expect(row!.config).toEqual({ image: "ubuntu-24.04" });
  });

  it("never sends credentials to an endpoint stored before the rule: validate refuses without calling out", async () => {
    const w = await seedWorld();
    const token = await hetznerAccount();
    const keyring = await keyringFromConfig(getConfig(env));
    const id = newId("cloudProvider");
    await db.insert(cloudProviders).values({
      id,
      teamId: w.team.id,
      name: "legacy-endpoint",
      providerType: "hetzner",
      region: "nbg1",
      encryptedCredentials: await keyring.encrypt(JSON.stringify({ api_token: token }), associatedData.cloudCredentials({ id })),
      config: { endpoint: fakeUrl("hetzner") },
    });
    const refused = await callInProduction("POST", `/v1/cloud-providers/${id}/validate`, { token: w.admin.token });
    expect(refused.status, refused.text).toBe(200);
    expect(refused.body.validation_error).toMatch(/^refused on a production server: config\.endpoint/);
    expect(await requestsSeenBy(token)).toEqual([]);

    // The same row on a test server reaches the (fake) cloud: the refusal above is the production rule, nothing else.
    expect((await call("POST", `/v1/cloud-providers/${id}/validate`, { token: w.admin.token })).body.validation_error).toBeNull();
    expect(await requestsSeenBy(token)).toHaveLength(1);
  });
});

describe("POST /v1/cloud-providers/:id/validate", () => {
  it("shows only a short printable excerpt of the cloud's error text, without the credential", async () => {
    const w = await seedWorld();
    const token = await hetznerAccount();
    const noisy = `${"\u001b[31mcorrupt\u0000\r\n".repeat(5)}your token ${token} is wrong ${"padding ".repeat(80)}`;
    await fetch(`${fakeUrl("hetzner")}/_fake/accounts/${token}/failures`, {
      method: "POST",
      body: JSON.stringify({ match: "GET /v1/servers", status: 401, code: "unauthorized", message: noisy }),
    });
    const provider = await call("POST", `/v1/teams/${w.team.slug}/cloud-providers`, {
      token: w.admin.token,
      body: { name: "hz", provider_type: "hetzner", region: "nbg1", credentials: { api_token: token }, config: { endpoint: fakeUrl("hetzner") } },
    });
    const result = await call("POST", `/v1/cloud-providers/${provider.body.id}/validate`, { token: w.admin.token });
    const message: string = result.body.validation_error;
    expect(message.startsWith("Hetzner Cloud: ")).toBe(true);
    expect(Array.from(message.slice("Hetzner Cloud: ".length)).length).toBeLessThanOrEqual(121);
    expect(message).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(message).not.toContain(token);
    expect(message).toContain("corrupt");
  });

  it("records success for working credentials and the cloud's refusal for others, never echoing them", async () => {
    const w = await seedWorld();
    const token = await hetznerAccount();
    const created = await call("POST", `/v1/teams/${w.team.slug}/cloud-providers`, {
      token: w.admin.token,
      body: { name: "hz", provider_type: "hetzner", region: "nbg1", credentials: { api_token: token }, config: { endpoint: fakeUrl("hetzner") } },
    });
    expect(created.status, created.text).toBe(201);
    const ok = await call("POST", `/v1/cloud-providers/${created.body.id}/validate`, { token: w.admin.token });
    expect(ok.status).toBe(200);
    expect(ok.body.validation_error).toBeNull();
    expect(ok.body.last_validated_at).not.toBeNull();

    const revoked = "hcloud-revoked-token-0123456789abcdef";
    await call("PATCH", `/v1/cloud-providers/${created.body.id}`, { token: w.admin.token, body: { credentials: { api_token: revoked } } });
    const refused = await call("POST", `/v1/cloud-providers/${created.body.id}/validate`, { token: w.admin.token });
    expect(refused.status).toBe(200);
    expect(refused.body.validation_error).toMatch(/authenticate|credentials/i);
    expect(refused.text).not.toContain(revoked);
    const [row] = await db.select().from(cloudProviders).where(eq(cloudProviders.id, created.body.id));
    expect(row!.validationError).toBe(refused.body.validation_error);
  });
});
