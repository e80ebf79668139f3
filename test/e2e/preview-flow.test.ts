import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { and, eq, inArray } from "drizzle-orm";
import { auditLogs, buildJobs, workflowRuns } from "../../src/db/schema.ts";
import { AgentDriver } from "../agent-driver.ts";
import { db } from "../db.ts";
import { pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { call } from "../harness.ts";
import { COMPOSE, commentsOf, deploymentsOf, eventually, githubRequests, liveEnvironment, previewProject, runningVms, sha } from "./helpers.ts";

// The whole product on one machine: GitHub webhooks (fake GitHub App) → queue → builder VMs on the local cloud whose
// agents are the simulator → fan-in → preview VM → ready with a URL → a push supersedes → close removes everything.

const driver = new AgentDriver().start();
afterAll(() => driver.stop());

describe("a pull request's preview, from open to close", () => {
  it("opens → ready, push → ready again on the same VM, close → every VM terminated", { timeout: 90_000 }, async () => {
    const { repo, projectId, providerId, installationId, owner } = await previewProject([sha(1), sha(2)]);
    const event = (action: string, commit: string, at: string, title = "Add the cart") =>
      sendWebhook("pull_request", pullRequestPayload({ action, repo, number: 7, sha: commit, updatedAt: at, installationId, title }));

    expect((await event("opened", sha(1), "2026-11-26T10:00:00Z")).status).toBe(202);
    const ready = await eventually("the preview to be ready", async () => {
      const environment = await liveEnvironment(projectId, 7);
      return environment?.status === "ready" ? environment : undefined;
    });
    expect(ready.commitHash).toBe(sha(1));
    // Its agent reported the deploy: the VM runs.
    expect((await call("GET", `/v1/environments/${ready.id}`, { token: owner.token })).body).toMatchObject({ pr_number: 7, pr_title: "Add the cart", status: "ready", vm_status: "running", error_message: null });
    const firstVm = ready.vmId;
    expect(firstVm).toBeTruthy();
    const [firstRun] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, ready.id));
    expect(firstRun).toMatchObject({ status: "completed", result: "success", trigger: "pr_opened", composeFile: COMPOSE });
    // The compose file's only service with a published port, and its container port.
    expect((await call("GET", `/v1/runs/${firstRun!.id}`, { token: owner.token })).body.deploy_services).toEqual([
      { name: "api", status: "running", health: "healthy", port: 3000 },
      { name: "web", status: "running", health: "healthy", port: 3001 },
    ]);
    expect(firstRun!.config).toMatchObject({ preview: { expose: { service: "web", port: 3000 }, routes: [] } });
    const jobs = await db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, firstRun!.id));
    expect(jobs.map((j) => `${j.name}:${j.status}`).sort()).toEqual(["api_amd64:completed", "web_amd64:completed"]);
    const logs = await call("GET", `/v1/jobs/${jobs[0]!.id}/logs`, { token: owner.token });
    expect(logs.body.data.length).toBeGreaterThan(0);

    // GitHub hears of it just after the environment is ready.
    const deployment = await eventually("the success status on GitHub", async () => {
      const [found] = await deploymentsOf(repo);
      return found?.statuses.some((s) => s.state === "success") ? found : undefined;
    });
    expect(deployment.statuses.find((s) => s.state === "success")!.environment_url).toBe(`https://${ready.subdomainHash}.${env.PREVIEW_DOMAIN}`);
    const comments = await commentsOf(repo, 7);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain("Preview ready");

    expect((await event("synchronize", sha(2), "2026-11-26T10:05:00Z", "Add the cart, with taxes")).status).toBe(202);
    const updated = await eventually("the pushed commit to be live", async () => {
      const environment = await liveEnvironment(projectId, 7);
      return environment?.status === "ready" && environment.commitHash === sha(2) ? environment : undefined;
    });
    expect(updated.id).toBe(ready.id);
    expect(updated.vmId).toBe(firstVm);
    expect((await call("GET", `/v1/environments/${ready.id}`, { token: owner.token })).body.pr_title).toBe("Add the cart, with taxes");
    // A renamed pull request (GitHub's "edited") changes the title and nothing else.
    expect((await event("edited", sha(2), "2026-11-26T10:07:00Z", "Cart and taxes")).status).toBe(202);
    await eventually("the new title", async () => (await call("GET", `/v1/environments/${ready.id}`, { token: owner.token })).body.pr_title === "Cart and taxes");
    expect(await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, ready.id))).toHaveLength(2);
    const runs = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, ready.id));
    expect(runs.map((r) => `${r.trigger}:${r.status}`).sort()).toEqual(["pr_opened:completed", "pr_synchronized:completed"]);
    // Each run a webhook started is in the team's audit log, by the GitHub account that sent the event.
    const audited = await db.select().from(auditLogs).where(and(eq(auditLogs.action, "environment.run_started"), inArray(auditLogs.resourceId, runs.map((r) => r.id))));
    expect(audited.map((a) => [a.metadata, a.actorId, a.projectId])).toEqual(
      expect.arrayContaining([
        [{ sender: "octocat", trigger: "pr_opened", pr_number: 7, commit_hash: sha(1) }, null, projectId],
        [{ sender: "octocat", trigger: "pr_synchronized", pr_number: 7, commit_hash: sha(2) }, null, projectId],
      ]),
    );
    expect(audited).toHaveLength(2);
    expect(await commentsOf(repo, 7)).toHaveLength(1);
    // Read once per run when it was planned; the deploys sent the text stored with the run.
    expect(await githubRequests(`GET /repos/${repo}/contents/docker-compose.yml`)).toHaveLength(2);

    expect((await event("closed", sha(2), "2026-11-26T10:10:00Z")).status).toBe(202);
    await eventually("the environment to be terminated", async () => (await liveEnvironment(projectId, 7))?.status === "terminated");
    await eventually("every VM to be terminated", async () => (await runningVms(providerId, { environment_id: ready.id })).length === 0);
    const [after] = await deploymentsOf(repo);
    expect(after!.statuses.map((s) => s.state)).toContain("inactive");
  });

  it("says on the environment itself why it failed before building", { timeout: 60_000 }, async () => {
    const { repo, projectId, installationId, owner } = await previewProject([]);
    // No stagely.yaml at this commit.
    expect((await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo, number: 3, sha: sha(9), installationId }))).status).toBe(202);
    const failed = await eventually("the environment to fail", async () => {
      const environment = await liveEnvironment(projectId, 3);
      return environment?.status === "failed" ? environment : undefined;
    });
    const fetched = await call("GET", `/v1/environments/${failed.id}`, { token: owner.token });
    expect(fetched.body.error_message).toMatch(/^stagely\.yaml: not found at the repository root at commit/);
    const listed = await call("GET", `/v1/projects/${projectId}/environments`, { token: owner.token });
    expect(listed.body.data[0]).toMatchObject({ id: failed.id, status: "failed", error_message: fetched.body.error_message });
  });
});
