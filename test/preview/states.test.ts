import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildJobs, buildLogs, environments, workflowRuns } from "../../src/db/schema.ts";
import { newId, newSubdomainHash } from "../../src/lib/ids.ts";
import { Logger } from "../../src/lib/logger.ts";
import type { PreviewHost } from "../../src/preview/host.ts";
import { publishPreviewHosts } from "../../src/preview/snapshot.ts";
import { previewHostStub } from "../../src/preview/stubs.ts";
import { AgentDriver } from "../agent-driver.ts";
import { countRoundTrips, db, waitForQuiet } from "../db.ts";
import { liveEnvironment, previewProject, sha, eventually } from "../e2e/helpers.ts";
import { pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { call } from "../harness.ts";
import { environmentRow, servePreview, visit, type ServedPreview } from "./helpers.ts";

// What a visitor sees in each state of an environment, how fast a change reaches the preview host, and that the
// hot path needs no database.

const json = { Accept: "application/json" };
const html = { Accept: "text/html" };
const logger = new Logger("warn");
let preview: ServedPreview;

beforeAll(async () => {
  preview = await servePreview({ access: "public" });
});
afterAll(() => preview?.agent.stop());

async function setState(status: (typeof environments.$inferSelect)["status"], run?: { status: string; error?: string }) {
  await db.update(environments).set({ status }).where(eq(environments.id, preview.environmentId));
  if (run) await db.update(workflowRuns).set({ status: run.status as "failed", errorMessage: run.error ?? null }).where(eq(workflowRuns.id, preview.runId));
  await publishPreviewHosts(env, db, [preview.environmentId], logger);
}

describe("pages when there is no app to reach", () => {
  afterAll(() => setState("ready", { status: "completed" }));

  it("building, deploying and queued: a page that refreshes itself (503 with Retry-After), JSON for API clients", async () => {
    for (const [status, title] of [["building", "Building the preview"], ["deploying", "Starting the preview"], ["pending", "Preview queued"]] as const) {
      await setState(status);
      const page = await visit(preview.url("/any/path"), { headers: html });
      expect(page.status, status).toBe(503);
      expect(page.headers.get("retry-after")).toMatch(/^\d+$/);
      const text = await page.text();
      expect(text).toContain(title);
      expect(text).toMatch(/<meta http-equiv="refresh" content="\d+">/);
      const api = await visit(preview.url("/any/path"), { headers: json });
      expect(api.status).toBe(503);
      expect(await api.json()).toMatchObject({ error: { code: "SERVICE_UNAVAILABLE", message: expect.any(String), request_id: expect.stringMatching(/^req_/) } });
    }
  });

  it("failed: 502 saying it failed; the reason only for members", async () => {
    await setState("failed", { status: "failed", error: "build web_amd64 failed: exit code 2" });
    const anonymous = await visit(preview.url("/"), { headers: html });
    expect(anonymous.status).toBe(502);
    const text = await anonymous.text();
    expect(text).toContain("This preview failed");
    expect(text).not.toContain("exit code 2");
    const member = await visit(preview.url("/"), { headers: { ...json, "X-Stagely-Token": preview.owner.token } });
    expect(member.status).toBe(502);
    expect((await member.json<{ error: { message: string } }>()).error.message).toContain("build web_amd64 failed: exit code 2");
  });

  it("terminated, reaped, unknown and malformed hosts: 404", async () => {
    await setState("terminated");
    expect((await visit(preview.url("/"), { headers: html })).status).toBe(404);
    await setState("reaped");
    expect((await visit(preview.url("/"), { headers: json })).status).toBe(404);
    const unknown = await visit(`https://${newSubdomainHash()}.${env.PREVIEW_DOMAIN}/`, { headers: json });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "NOT_FOUND" } });
    for (const host of [`not-a-hash.${env.PREVIEW_DOMAIN}`, `a.b.${env.PREVIEW_DOMAIN}`, `UPPER--${preview.hash}x.${env.PREVIEW_DOMAIN}`]) {
      expect((await visit(`https://${host}/`, { headers: json })).status, host).toBe(404);
    }
  });

  it("ready but exposing nothing: a page saying to add preview.expose", async () => {
    await db.update(workflowRuns).set({ config: { version: 2, builds: [], preview: { size: "small" } } }).where(eq(workflowRuns.id, preview.runId));
    await setState("ready", { status: "completed" });
    const page = await visit(preview.url("/"), { headers: html });
    expect(page.status).toBe(502);
    expect(await page.text()).toContain("preview.expose");
    await db.update(workflowRuns).set({ config: { version: 2, builds: [], preview: { size: "small", expose: { service: "web", port: 3000 }, routes: [] } } }).where(eq(workflowRuns.id, preview.runId));
    await publishPreviewHosts(env, db, [preview.environmentId], logger);
    expect((await visit(preview.url("/echo"))).status).toBe(200);
  });

  it("requests for the API host still reach the API", async () => {
    expect((await exports.default.fetch("https://stagely.test/health")).status).toBe(200);
    expect((await exports.default.fetch(`https://${env.PREVIEW_DOMAIN}/health`)).status).toBe(200);
  });
});

describe("the preview host's state", () => {
  it("costs no database round trip per request once warm", async () => {
    await visit(preview.url("/echo"));
    await waitForQuiet();
    const trips = await countRoundTrips(async () => {
      for (let i = 0; i < 20; i++) expect((await visit(preview.url(`/echo?i=${i}`))).status).toBe(200);
    });
    expect(trips).toBe(0);
  });

  it("records last_request_at at most once a minute, and the API shows it", async () => {
    const stub = previewHostStub(env, preview.hash);
    await runInDurableObject(stub, (_instance: PreviewHost, state) => state.storage.kv.delete("touchedAt"));
    const before = Date.now();
    await visit(preview.url("/echo"));
    const first = await eventually("last_request_at to be written", async () => {
      const at = (await environmentRow(preview.environmentId)).lastRequestAt;
      return at && at.getTime() >= before - 1000 ? at : undefined;
    });
    await visit(preview.url("/echo"));
    await waitForQuiet();
    expect((await environmentRow(preview.environmentId)).lastRequestAt).toEqual(first);
    const api = await call("GET", `/v1/environments/${preview.environmentId}`, { token: preview.owner.token });
    expect(api.body.last_request_at).toBe(first.toISOString());

    // A minute later (the host's clock moved back), the next request writes again.
    await runInDurableObject(stub, (_instance: PreviewHost, state) => state.storage.kv.put("touchedAt", Date.now() - 61_000));
    await visit(preview.url("/echo"));
    await eventually("last_request_at to move", async () => ((await environmentRow(preview.environmentId)).lastRequestAt!.getTime() > first.getTime() ? true : undefined));
  });

  it("a host that missed an update catches up with its next write of last_request_at", async () => {
    const stub = previewHostStub(env, preview.hash);
    await db.update(environments).set({ status: "building" }).where(eq(environments.id, preview.environmentId));
    expect((await visit(preview.url("/echo"))).status).toBe(200); // not published: the host still says ready
    await runInDurableObject(stub, (_instance: PreviewHost, state) => state.storage.kv.put("touchedAt", 0));
    await visit(preview.url("/echo"));
    await eventually("the host to see building", async () => ((await stub.snapshot())?.status === "building" ? true : undefined));
    expect((await visit(preview.url("/echo"), { headers: json })).status).toBe(503);
    await setState("ready");
  });

  it("never lets an older snapshot replace a newer one", async () => {
    const stub = previewHostStub(env, preview.hash);
    const current = (await stub.snapshot())!;
    await stub.publish({ ...current, status: "terminated", version: current.version - 1 });
    expect((await stub.snapshot())!.status).toBe(current.status);
  });

  it("looks an unknown host up in the database once, not on every request", async () => {
    const hash = newSubdomainHash();
    await waitForQuiet();
    expect(await countRoundTrips(() => visit(`https://${hash}.${env.PREVIEW_DOMAIN}/`))).toBe(1);
    expect(await countRoundTrips(() => visit(`https://${hash}.${env.PREVIEW_DOMAIN}/`))).toBe(0);
  });

  it("shows a job's logs to members on the preview host, to nobody else", async () => {
    const jobId = newId("buildJob");
    await db.insert(buildJobs).values({ id: jobId, workflowRunId: preview.runId, name: "web_amd64", architecture: "amd64", contextPath: ".", dockerfilePath: "Dockerfile", status: "completed" });
    await db.insert(buildLogs).values([1, 2, 3].map((seq) => ({ buildJobId: jobId, seq, timestamp: new Date(), stream: "stdout" as const, line: `step ${seq}` })));
    const member = await visit(preview.url(`/__stagely/logs/${jobId}`), { headers: { "X-Stagely-Token": preview.owner.token } });
    expect(member.status).toBe(200);
    expect(await member.text()).toBe("step 1\nstep 2\nstep 3");
    expect((await visit(preview.url(`/__stagely/logs/${jobId}`), { headers: json })).status).toBe(403);
    expect((await visit(preview.url("/__stagely/anything"), { headers: json })).status).toBe(404);
  });
});

describe("the pipeline keeps the preview host current", () => {
  const driver = new AgentDriver().start();
  afterAll(() => driver.stop());

  it("building while it builds, the app once ready, 404 once the pull request closes", { timeout: 90_000 }, async () => {
    const { repo, projectId, installationId, owner } = await previewProject([sha(1)]);
    const event = (action: string, at: string) => sendWebhook("pull_request", pullRequestPayload({ action, repo, number: 3, sha: sha(1), updatedAt: at, installationId }));
    const asOwner = { ...json, "X-Stagely-Token": owner.token };
    expect((await event("opened", "2026-11-26T10:00:00Z")).status).toBe(202);
    const environment = await eventually("the environment", () => liveEnvironment(projectId, 3));
    const url = `https://${environment.subdomainHash}.${env.PREVIEW_DOMAIN}/`;
    const seen = new Set<number>();
    await eventually("the preview to be ready", async () => {
      const response = await visit(url, { headers: asOwner });
      seen.add(response.status);
      return (await liveEnvironment(projectId, 3))?.status === "ready" && response.status === 200 ? true : undefined;
    });
    // 503 while building/deploying; once ready, the compose file's only published service answers through the tunnel.
    expect(seen.has(503)).toBe(true);
    expect(await (await visit(url, { headers: asOwner })).text()).toContain("Hello from the preview app");

    expect((await event("closed", "2026-11-26T10:05:00Z")).status).toBe(202);
    await eventually("the environment to be terminated", async () => (await liveEnvironment(projectId, 3))?.status === "terminated");
    expect((await visit(url, { headers: asOwner })).status).toBe(404);
  });
});
