import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { workflowRuns } from "../../src/db/schema.ts";
import { AgentDriver } from "../agent-driver.ts";
import { db } from "../db.ts";
import { pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { commentsOf, eventually, liveEnvironment, previewProject, sha } from "./helpers.ts";

// Preview agents whose deploy fails (a service exits); builders succeed.
const driver = new AgentDriver({}, (agent) => (agent.role === "preview" ? { failDeploys: true } : true)).start();
afterAll(() => driver.stop());

describe("a deploy that fails", () => {
  it("fails the environment with the deploy's last log lines, and says so on GitHub", { timeout: 60_000 }, async () => {
    const project = await previewProject([sha(1)]);
    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 9, sha: sha(1), installationId: project.installationId }));
    const failed = await eventually("the environment to fail", async () => {
      const environment = await liveEnvironment(project.projectId, 9);
      return environment?.status === "failed" ? environment : undefined;
    });
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, failed.id));
    expect(run).toMatchObject({ status: "failed", result: "failure" });
    expect(run!.errorMessage).toContain("api: exited (unhealthy)");
    expect(run!.errorMessage).toContain("Last lines of the deploy:");
    expect(run!.errorMessage).toContain("Error: listen EADDRINUSE");
    const comments = await eventually("a failure comment", async () => {
      const found = await commentsOf(project.repo, 9);
      return found.some((c) => c.body.includes("EADDRINUSE")) ? found : undefined;
    });
    expect(comments).toHaveLength(1);
  });
});

describe("a pull request with a broken stagely.yaml", () => {
  it("gets a failed run naming the problem, on GitHub too, and no VM", { timeout: 60_000 }, async () => {
    const project = await previewProject([sha(1)], { yaml: "version: 2\nbuilds:\n  api:\n    platform: linux/amd64\n" });
    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 11, sha: sha(1), installationId: project.installationId }));
    const failed = await eventually("the environment to fail", async () => {
      const environment = await liveEnvironment(project.projectId, 11);
      return environment?.status === "failed" ? environment : undefined;
    });
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, failed.id));
    expect(run).toMatchObject({ status: "failed", result: "failure", errorMessage: "stagely.yaml: builds.api.context is required" });
    expect(failed.vmId).toBeNull();
    const comments = await eventually("the comment", async () => {
      const found = await commentsOf(project.repo, 11);
      return found.length ? found : undefined;
    });
    expect(comments[0]!.body).toContain("stagely.yaml: builds.api.context is required");
  });
});
