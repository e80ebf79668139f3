import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { associatedData } from "../db/encrypted-columns.ts";
import { auditLogs, cloudProviders, projectRegistries } from "../db/schema.ts";
import { Logger } from "../lib/logger.ts";
import { pipelineContext } from "../pipeline/context.ts";
import { db } from "../../test/db.ts";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { call, seedInstallation, seedTeam, seedUser } from "../../test/harness.ts";
import { env } from "cloudflare:workers";
import { registryLogin } from "./resolve.ts";

async function world() {
  const owner = await seedUser();
  const admin = await seedUser();
  const member = await seedUser();
  const team = await seedTeam([
    { user: owner, role: "owner" },
    { user: admin, role: "admin" },
    { user: member, role: "member" },
  ]);
  const repo = `acme/web-${team.id.slice(5, 13)}`;
  await seedInstallation(team.id, [repo]);
  const project = await call("POST", `/v1/teams/${team.slug}/projects`, { token: owner.token, body: { name: "Web", repo_url: repo } });
  return { owner, admin, member, team, projectId: project.body.id as string, projectStatus: project.status };
}

const generic = { kind: "generic", address: "registry.example.com/acme", username: "stagely", password: "registry-password-123" };

describe("a project's registry", () => {
  it("is set (write-only password, sealed to the project), read back without it, replaced and removed, each audited", async () => {
    const w = await world();
    expect(w.projectStatus).toBe(201);
    expect((await call("GET", `/v1/projects/${w.projectId}/registry`, { token: w.member.token })).status).toBe(404);

    const set = await call("PUT", `/v1/projects/${w.projectId}/registry`, { token: w.admin.token, body: generic });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ project_id: w.projectId, kind: "generic", address: "registry.example.com/acme", username: "stagely", has_password: true });
    expect(set.text).not.toContain("registry-password-123");
    const [row] = await db.select().from(projectRegistries).where(eq(projectRegistries.projectId, w.projectId));
    expect(row!.encryptedPassword).not.toContain("registry-password-123");
    const ctx = await pipelineContext(env, new Logger("error"));
    expect(await ctx.keyring.decrypt(row!.encryptedPassword!, associatedData.registryPassword(row!))).toBe("registry-password-123");
    expect(await registryLogin(ctx, row!, null)).toEqual({
      address: "registry.example.com/acme",
      auth: { registry: "registry.example.com", username: "stagely", password: "registry-password-123" },
    });

    const read = await call("GET", `/v1/projects/${w.projectId}/registry`, { token: w.member.token });
    expect(read.body).toEqual(set.body);
    expect(read.text).not.toContain("registry-password-123");

    const replaced = await call("PUT", `/v1/projects/${w.projectId}/registry`, { token: w.owner.token, body: { kind: "digitalocean", registry_name: "acme" } });
    expect(replaced.body).toMatchObject({ kind: "digitalocean", address: null, username: null, has_password: false, registry_name: "acme" });

    expect((await call("DELETE", `/v1/projects/${w.projectId}/registry`, { token: w.admin.token })).status).toBe(204);
    expect((await call("DELETE", `/v1/projects/${w.projectId}/registry`, { token: w.admin.token })).status).toBe(404);
    const audits = await db.select().from(auditLogs).where(eq(auditLogs.projectId, w.projectId));
    expect(audits.map((a) => a.action).filter((a) => a.startsWith("project.registry")).sort()).toEqual(["project.registry_removed", "project.registry_set", "project.registry_set"]);
    expect(JSON.stringify(audits)).not.toContain("registry-password-123");
  });

  it("refuses bad input with 400 naming the field, and changes nothing", async () => {
    const w = await world();
    for (const [body, path] of [
      [{ kind: "generic", address: "https://registry.example.com", username: "u", password: "p" }, "address"],
      [{ kind: "generic", address: "registry.example.com", username: "u" }, "password"],
      [{ kind: "ecr", region: "moon-1" }, "region"],
      [{ kind: "digitalocean", registry_name: "Not A Name" }, "registry_name"],
      [{ kind: "ghcr" }, "kind"],
      [{ ...generic, extra: true }, ""],
    ] as const) {
      const response = await call("PUT", `/v1/projects/${w.projectId}/registry`, { token: w.owner.token, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      if (path) expect(response.body.error.message).toContain(path);
    }
    expect(await db.select().from(projectRegistries).where(eq(projectRegistries.projectId, w.projectId))).toEqual([]);
  });

  it("is the owning team's: another team gets 404, a member 403, no token 401", async () => {
    const w = await world();
    const stranger = await seedUser();
    await seedTeam([{ user: stranger, role: "owner" }]);
    expect((await call("PUT", `/v1/projects/${w.projectId}/registry`, { token: stranger.token, body: generic })).status).toBe(404);
    expect((await call("GET", `/v1/projects/${w.projectId}/registry`, { token: stranger.token })).status).toBe(404);
    expect((await call("DELETE", `/v1/projects/${w.projectId}/registry`, { token: stranger.token })).status).toBe(404);
    const forbidden = await call("PUT", `/v1/projects/${w.projectId}/registry`, { token: w.member.token, body: generic });
    expect(forbidden.status).toBe(403);
    expect((await call("PUT", `/v1/projects/${w.projectId}/registry`, { body: generic })).status).toBe(401);
    expect(await db.select().from(projectRegistries).where(eq(projectRegistries.projectId, w.projectId))).toEqual([]);
  });
});

describe("registry credentials from the project's cloud account", () => {
  async function account(fake: "aws" | "digitalocean") {
    const response = await fetch(`${fakeUrl(fake)}/_fake/accounts`, { method: "POST", body: "{}" });
    return response.json<Record<string, string>>();
  }

  it("ECR: GetAuthorizationToken signed for the ecr service, the 12-hour token decoded", async () => {
    const w = await world();
    const keys = await account("aws");
    const provider = await call("POST", `/v1/teams/${w.team.slug}/cloud-providers`, {
      token: w.owner.token,
      body: { name: "aws", provider_type: "aws", region: "eu-west-1", credentials: keys, config: { endpoint: fakeUrl("aws") } },
    });
    expect(provider.status).toBe(201);
    const [row] = await db.select().from(cloudProviders).where(eq(cloudProviders.id, provider.body.id));
    const ctx = await pipelineContext(env, new Logger("error"));
    const login = await registryLogin(ctx, { projectId: w.projectId, kind: "ecr", region: null } as never, row!);
    expect(login.address).toMatch(/^\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com$/);
    expect(login.auth).toMatchObject({ registry: login.address, username: "AWS" });
    expect(login.auth.password.length).toBeGreaterThan(20);
    const requests = await (await fetch(`${fakeUrl("aws")}/_fake/accounts/${keys.access_key_id}/requests`)).json<{ requests: { operation: string }[] }>();
    expect(requests.requests.map((r) => r.operation)).toContain("ecr:GetAuthorizationToken");

    // A DigitalOcean registry cannot come from an AWS account: a permanent error naming both.
    await expect(registryLogin(ctx, { projectId: w.projectId, kind: "digitalocean", registryName: "acme" } as never, row!)).rejects.toThrow(/needs a DigitalOcean cloud account on the project, not aws/);
  });

  it("DigitalOcean: read-write docker credentials for the named registry", async () => {
    const w = await world();
    const { token } = await account("digitalocean");
    const provider = await call("POST", `/v1/teams/${w.team.slug}/cloud-providers`, {
      token: w.owner.token,
      body: { name: "do", provider_type: "digitalocean", region: "fra1", credentials: { api_token: token }, config: { endpoint: fakeUrl("digitalocean") } },
    });
    expect(provider.status).toBe(201);
    const [row] = await db.select().from(cloudProviders).where(eq(cloudProviders.id, provider.body.id));
    const ctx = await pipelineContext(env, new Logger("error"));
    const login = await registryLogin(ctx, { projectId: w.projectId, kind: "digitalocean", registryName: "acme" } as never, row!);
    expect(login.address).toBe("registry.digitalocean.com/acme");
    expect(login.auth.registry).toBe("registry.digitalocean.com");
    expect(login.auth.username).toBe(login.auth.password);
  });
});
