import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import type { CoreMessage } from "../../src/agents/protocol.ts";
import { workflowRuns } from "../../src/db/schema.ts";
import { AgentDriver } from "../agent-driver.ts";
import { db } from "../db.ts";
import { pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { call } from "../harness.ts";
import { eventually, liveEnvironment, previewProject, runningVms, sha } from "./helpers.ts";

type Deploy = Extract<CoreMessage, { type: "DEPLOY" }> & { secrets: { key: string; value: string; scope: string }[]; files: { path: string; content_base64: string; mode: string }[] };
const deploys: Deploy[] = [];
const driver = new AgentDriver({ onMessage: (message) => void (message.type === "DEPLOY" && deploys.push(message as Deploy)) }).start();
afterAll(() => driver.stop());

async function open(project: Awaited<ReturnType<typeof previewProject>>, number: number, options: { fork?: boolean } = {}) {
  await sendWebhook(
    "pull_request",
    pullRequestPayload({ action: "opened", repo: project.repo, number, sha: sha(1), installationId: project.installationId, headRepo: options.fork ? "someone/fork" : undefined }),
  );
  return eventually(`PR ${number} ready`, async () => {
    const environment = await liveEnvironment(project.projectId, number);
    return environment?.status === "ready" ? environment : undefined;
  });
}

describe("DEPLOY carries the project's secrets", () => {
  it("global for every service, scoped ones winning for theirs, files as files; forks get none; a change redeploys", { timeout: 90_000 }, async () => {
    const project = await previewProject([sha(1)]);
    const token = project.owner.token;
    const secret = (body: unknown) => call("POST", `/v1/projects/${project.projectId}/secrets`, { token, body });
    await secret({ key: "API_URL", value: "https://global.example" });
    await secret({ key: "API_URL", value: "https://api-only.example", scope: "api" });
    await secret({ key: "DB_PASSWORD", value: "global-db-password" });
    await secret({ key: "TLS_KEY", value: "-----BEGIN KEY-----", secret_type: "file", file_path: "certs/tls.key", file_permissions: "0640" });

    const environment = await open(project, 1);
    const deploy = deploys.find((d) => d.job_id && d.secrets.some((s) => s.value === "https://api-only.example"))!;
    expect(deploy).toBeDefined();
    const of = (scope: string) => Object.fromEntries(deploy.secrets.filter((s) => s.scope === scope).map((s) => [s.key, s.value]));
    expect(of("api")).toEqual({ API_URL: "https://api-only.example", DB_PASSWORD: "global-db-password" });
    expect(of("web")).toEqual({ API_URL: "https://global.example", DB_PASSWORD: "global-db-password" });
    expect(of("global")).toEqual({ API_URL: "https://global.example", DB_PASSWORD: "global-db-password" });
    expect(deploy.files).toEqual([{ path: "/certs/tls.key", content_base64: btoa("-----BEGIN KEY-----"), mode: "0640" }]);
    expect(deploy.lifecycle.on_start).toEqual([{ service: "api", command: "npm run db:migrate" }]);
    expect(Object.keys(deploy.images).sort()).toEqual(["api", "web"]);

    const [dbSecret] = (await call("GET", `/v1/projects/${project.projectId}/secrets`, { token })).body.data.filter((s: { key: string }) => s.key === "DB_PASSWORD");
    await call("PATCH", `/v1/secrets/${dbSecret.id}`, { token, body: { value: "rotated-db-password" } });
    await eventually("a secret_updated run to complete", async () => {
      const runs = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, environment.id));
      return runs.some((r) => r.trigger === "secret_updated" && r.status === "completed");
    });
    expect(deploys.some((d) => d.secrets.some((s) => s.value === "rotated-db-password"))).toBe(true);

    await call("PATCH", `/v1/projects/${project.projectId}`, { token, body: { fork_previews: true } });
    const before = deploys.length;
    await open(project, 2, { fork: true });
    const forkDeploy = deploys.slice(before).find((d) => d.secrets.length === 0);
    expect(forkDeploy).toMatchObject({ secrets: [], files: [] });
  });
});

describe("environment, run and job routes", () => {
  it("rebuilds, lists runs, reads a run and its job logs, and deletes the preview with every VM", { timeout: 90_000 }, async () => {
    const project = await previewProject([sha(1)]);
    const token = project.owner.token;
    const environment = await open(project, 5);

    const fetched = await call("GET", `/v1/environments/${environment.id}`, { token });
    expect(fetched.body).toMatchObject({ id: environment.id, status: "ready", pr_number: 5, url: expect.stringMatching(/^https:\/\/[a-z0-9]{16}\./) });
    const listed = await call("GET", `/v1/projects/${project.projectId}/environments`, { token });
    expect(listed.body.data.map((e: { id: string }) => e.id)).toEqual([environment.id]);

    expect((await call("POST", `/v1/environments/${environment.id}/rebuild`, { token })).status).toBe(202);
    const runs = await eventually("the rebuild to complete", async () => {
      const page = await call("GET", `/v1/environments/${environment.id}/runs`, { token });
      return page.body.data.some((r: { trigger: string; status: string }) => r.trigger === "manual_rebuild" && r.status === "completed") ? page.body.data : undefined;
    });
    const run = await call("GET", `/v1/runs/${runs[0].id}`, { token });
    expect(run.body.jobs.map((j: { name: string }) => j.name).sort()).toEqual(["api_amd64", "web_amd64"]);
    const logs = await call("GET", `/v1/jobs/${run.body.jobs[0].id}/logs?limit=5`, { token });
    expect(logs.body.data).toHaveLength(5);
    const next = await call("GET", `/v1/jobs/${run.body.jobs[0].id}/logs?limit=5&cursor=${logs.body.next_cursor}`, { token });
    expect(next.body.data[0].seq).toBeGreaterThan(logs.body.data[4].seq);
    expect((await call("POST", `/v1/runs/${runs[0].id}/cancel`, { token })).status).toBe(409);

    expect((await call("DELETE", `/v1/environments/${environment.id}`, { token })).status).toBe(202);
    await eventually("terminated", async () => (await liveEnvironment(project.projectId, 5))?.status === "terminated");
    await eventually("no VMs", async () => (await runningVms(project.providerId, { environment_id: environment.id })).length === 0);
    expect((await call("DELETE", `/v1/environments/${environment.id}`, { token })).status).toBe(404);
  });

  it("refuses bad input and a project of another team", async () => {
    const project = await previewProject([sha(1)]);
    const token = project.owner.token;
    const bad = await call("POST", `/v1/projects/${project.projectId}/environments`, { token, body: { pr_number: 0, branch: "x", commit_hash: "abc" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(["commit_hash", "pr_number"]);
    const other = await previewProject([sha(1)]);
    expect((await call("GET", `/v1/projects/${other.projectId}/environments`, { token })).status).toBe(404);
  });
});
