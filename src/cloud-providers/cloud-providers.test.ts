import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { call, seedCloudProvider, seedProject, seedWorld } from "../../test/harness.ts";
import { db } from "../../test/db.ts";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { getConfig } from "../config.ts";
import { associatedData } from "../db/encrypted-columns.ts";
import { buildJobs, cloudProviders, environments, workflowRuns } from "../db/schema.ts";
import { keyringFromConfig } from "../lib/crypto.ts";
import { newId, newSubdomainHash } from "../lib/ids.ts";

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

describe("POST /v1/cloud-providers/:id/validate", () => {
  const hetznerAccount = async () => {
    const response = await fetch(`${fakeUrl("hetzner")}/_fake/accounts`, { method: "POST", body: "{}" });
    return ((await response.json()) as { token: string }).token;
  };

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
