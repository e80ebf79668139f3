import { and, asc, eq, inArray } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { agentConnections, buildJobs, buildLogs, workflowRuns } from "../../src/db/schema.ts";
import { AgentDriver } from "../agent-driver.ts";
import { db } from "../db.ts";
import { pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { call } from "../harness.ts";
import { eventually, liveEnvironment, previewProject, sha } from "./helpers.ts";

// Where a run's images are built. Default mode (no registry): on the environment's preview VM, for its platform only,
// and no builder VM at all. Registry mode: a builder VM per build × platform, as before.

const driver = new AgentDriver().start();
afterAll(() => driver.stop());

const MULTI_PLATFORM_YAML = `version: 2
builds:
  web:
    context: ./web
    platforms: [linux/amd64, linux/arm64]
preview:
  size: small
`;
const COMPOSE = `services:
  web: {image: web, ports: ["80:3000"]}
`;

async function openAndWaitReady(repo: string, projectId: string, installationId: number, number: number) {
  const opened = await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo, number, sha: sha(1), updatedAt: "2026-12-01T10:00:00Z", installationId }));
  expect(opened.status).toBe(202);
  return eventually("the preview to be ready", async () => {
    const environment = await liveEnvironment(projectId, number);
    return environment?.status === "ready" ? environment : undefined;
  });
}

async function jobsOf(environmentId: string) {
  const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, environmentId));
  return db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, run!.id));
}

describe("where a run builds its images", () => {
  it("default mode: on the preview VM, the preview's platform only (said in the job's log), no builder agent", { timeout: 60_000 }, async () => {
    const { repo, projectId, installationId, owner } = await previewProject([sha(1)], { yaml: MULTI_PLATFORM_YAML, compose: COMPOSE });
    const ready = await openAndWaitReady(repo, projectId, installationId, 3);
    const jobs = await jobsOf(ready.id);
    expect(jobs.map((j) => `${j.name}:${j.status}`)).toEqual(["web_amd64:completed"]);
    // No builder: the job never had a VM or agent of its own.
    expect(jobs[0]).toMatchObject({ vmId: null, agentId: null });
    const builders = await db.select().from(agentConnections).where(inArray(agentConnections.buildJobId, jobs.map((j) => j.id)));
    expect(builders).toEqual([]);
    const previews = await db.select().from(agentConnections).where(and(eq(agentConnections.environmentId, ready.id), eq(agentConnections.role, "preview")));
    expect(previews).toHaveLength(1);
    // The preview agent built it: its BUILD went to the preview agent's simulator, whose lines are the job's log.
    const lines = await db.select().from(buildLogs).where(eq(buildLogs.buildJobId, jobs[0]!.id)).orderBy(asc(buildLogs.seq));
    expect(lines[0]).toMatchObject({ seq: 0 });
    expect(lines[0]!.line).toContain("no registry");
    expect(lines[0]!.line).toContain("skipped: linux/arm64");
    expect(lines.length).toBeGreaterThan(1);
    const api = await call("GET", `/v1/jobs/${jobs[0]!.id}/logs`, { token: owner.token });
    expect(api.body.data[0].line).toContain("for linux/amd64 only");
  });

  it("registry mode: a builder VM per build × platform, none of them the preview", { timeout: 60_000 }, async () => {
    const { repo, projectId, installationId } = await previewProject([sha(1)], { yaml: MULTI_PLATFORM_YAML, compose: COMPOSE, registry: "registry.example.test" });
    const ready = await openAndWaitReady(repo, projectId, installationId, 4);
    const jobs = await jobsOf(ready.id);
    expect(jobs.map((j) => `${j.name}:${j.status}`).sort()).toEqual(["web_amd64:completed", "web_arm64:completed"]);
    for (const job of jobs) {
      expect(job.vmId).toBeTruthy();
      // Pushed to the project's registry, by digest.
      expect(job.artifactUrl).toMatch(/^registry\.example\.test\/.+@sha256:[0-9a-f]{64}$/);
    }
    const builders = await db.select().from(agentConnections).where(inArray(agentConnections.buildJobId, jobs.map((j) => j.id)));
    expect(builders.map((b) => b.role)).toEqual(["builder", "builder"]);
    const lines = await db.select().from(buildLogs).where(and(eq(buildLogs.buildJobId, jobs[0]!.id), eq(buildLogs.seq, 0)));
    expect(lines).toEqual([]);
  });
});
