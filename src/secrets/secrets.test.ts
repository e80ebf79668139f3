import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { call, seedProject, seedWorld } from "../../test/harness.ts";
import { db } from "../../test/db.ts";
import { getConfig } from "../config.ts";
import { associatedData } from "../db/encrypted-columns.ts";
import { auditLogs, projects, secrets } from "../db/schema.ts";
import { keyringFromConfig } from "../lib/crypto.ts";

const stored = async (id: string) => (await db.select().from(secrets).where(eq(secrets.id, id)))[0]!;
const open = async (row: typeof secrets.$inferSelect) => (await keyringFromConfig(getConfig(env))).decrypt(row.encryptedValue, associatedData.secret(row));

describe("secrets", () => {
  it("stores a value encrypted and bound to its project, key and scope, and never returns it", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const value = "s3cret-value-for-the-api-0001";
    const created = await call("POST", `/v1/projects/${project.id}/secrets`, { token: w.admin.token, body: { key: "API_KEY", value, scope: "web" } });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ key: "API_KEY", scope: "web", secret_type: "env", file_path: null, created_by: w.admin.id });
    expect(created.text).not.toContain(value);
    const row = await stored(created.body.id);
    expect(row.encryptedValue).toMatch(/^v1\.k1\./);
    expect(await open(row)).toBe(value);
    await expect((await keyringFromConfig(getConfig(env))).decrypt(row.encryptedValue, associatedData.secret({ ...row, scope: "global" }))).rejects.toThrow();

    const list = await call("GET", `/v1/projects/${project.id}/secrets`, { token: w.viewer.token });
    expect(list.body.data).toHaveLength(1);
    expect(list.text).not.toContain(value);
    const [audit] = await db.select().from(auditLogs).where(eq(auditLogs.resourceId, created.body.id));
    expect(audit!.metadata).toEqual({ key: "API_KEY", scope: "web", secret_type: "env" });
    expect(JSON.stringify(audit)).not.toContain(value);
    const [after] = await db.select().from(projects).where(eq(projects.id, project.id));
    expect(after!.secretsChangedAt).not.toBeNull();
  });

  it("stores file secrets with a safe relative path and mode", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const created = await call("POST", `/v1/projects/${project.id}/secrets`, {
      token: w.admin.token,
      body: { key: "TLS_KEY", value: "-----BEGIN KEY-----", secret_type: "file", file_path: "certs/tls.key" },
    });
    expect(created.body).toMatchObject({ secret_type: "file", file_path: "certs/tls.key", file_permissions: "0600" });
  });

  it("rejects bad input (400, naming the field) and duplicates (409), storing nothing", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const post = (body: unknown) => call("POST", `/v1/projects/${project.id}/secrets`, { token: w.admin.token, body });
    for (const [body, field] of [
      [{ key: "1BAD", value: "x" }, "key"],
      [{ key: "OK", value: "" }, "value"],
      [{ key: "OK", value: "x", scope: "../web" }, "scope"],
      [{ key: "OK", value: "x", secret_type: "file" }, "file_path"],
      [{ key: "OK", value: "x", secret_type: "file", file_path: "../etc/passwd" }, "file_path"],
      [{ key: "OK", value: "x", secret_type: "file", file_path: "/etc/passwd" }, "file_path"],
      [{ key: "OK", value: "x", secret_type: "file", file_path: "a.txt", file_permissions: "777" }, "file_permissions"],
      [{ key: "OK", value: "x".repeat(33 * 1024) }, "value"],
      [{ key: "OK", value: "x", file_path: "a.txt" }, "file_path"],
    ] as const) {
      const response = await post(body);
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(response.body.error.issues.map((i: { path: string }) => i.path)).toContain(field);
    }
    expect(await db.select().from(secrets).where(eq(secrets.projectId, project.id))).toEqual([]);
    expect((await post({ key: "DUP", value: "one" })).status).toBe(201);
    expect((await post({ key: "DUP", value: "two" })).status).toBe(409);
    expect((await post({ key: "DUP", value: "two", scope: "worker" })).status).toBe(201);
  });

  it("changes a value by re-encrypting it for the same row, and deletes", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const created = await call("POST", `/v1/projects/${project.id}/secrets`, { token: w.admin.token, body: { key: "TOKEN", value: "first-value-123" } });
    const updated = await call("PATCH", `/v1/secrets/${created.body.id}`, { token: w.admin.token, body: { value: "second-value-456" } });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.text).not.toContain("second-value-456");
    expect(await open(await stored(created.body.id))).toBe("second-value-456");
    expect((await call("PATCH", `/v1/secrets/${created.body.id}`, { token: w.admin.token, body: { secret_type: "file" } })).status).toBe(400);
    expect((await call("PATCH", `/v1/secrets/${created.body.id}`, { token: w.admin.token, body: { key: "RENAMED" } })).status).toBe(400);
    expect(await open(await stored(created.body.id))).toBe("second-value-456");
    expect((await call("DELETE", `/v1/secrets/${created.body.id}`, { token: w.admin.token })).status).toBe(204);
    expect((await call("DELETE", `/v1/secrets/${created.body.id}`, { token: w.admin.token })).status).toBe(404);
  });
});
