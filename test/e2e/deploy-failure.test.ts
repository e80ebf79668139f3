import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { getConfig } from "../../src/config.ts";
import { associatedData } from "../../src/db/encrypted-columns.ts";
import { secrets, workflowRuns } from "../../src/db/schema.ts";
import { keyringFromConfig } from "../../src/lib/crypto.ts";
import { newId } from "../../src/lib/ids.ts";
import { AgentDriver } from "../agent-driver.ts";
import { db } from "../db.ts";
import { pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { call } from "../harness.ts";
import { commentsOf, deploymentsOf, eventually, liveEnvironment, previewProject, sha } from "./helpers.ts";

// Preview agents whose deploy fails (a service exits); builders succeed.
const driver = new AgentDriver({}, (agent) => (agent.role === "preview" ? { failDeploys: true } : true)).start();
afterAll(() => driver.stop());

describe("a deploy that fails", () => {
  it("fails the environment with the deploy's last lines, masked; GitHub gets a link to the run, not the output", { timeout: 60_000 }, async () => {
    const project = await previewProject([sha(1)]);
    // The failing deploy prints "Error: listen EADDRINUSE: address already in use :::3000".
    const secret = await call("POST", `/v1/projects/${project.projectId}/secrets`, { token: project.owner.token, body: { key: "BIND_ERROR", value: "address already in use" } });
    expect(secret.status).toBe(201);
    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 9, sha: sha(1), installationId: project.installationId }));
    const failed = await eventually("the environment to fail", async () => {
      const environment = await liveEnvironment(project.projectId, 9);
      return environment?.status === "failed" ? environment : undefined;
    });
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, failed.id));
    expect(run).toMatchObject({ status: "failed", result: "failure" });
    expect(run!.errorMessage).toContain("api: exited (unhealthy)");
    expect(run!.errorMessage).toContain("Last lines of the deploy:");
    expect(run!.errorMessage).toContain("Error: listen EADDRINUSE: *** :::3000");
    expect(run!.errorMessage).not.toContain("address already in use");
    const comments = await eventually("a failure comment", async () => {
      const found = await commentsOf(project.repo, 9);
      return found.some((c) => c.body.includes("The deploy failed")) ? found : undefined;
    });
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain(`https://stagely.test/v1/runs/${run!.id}`);
    expect(comments[0]!.body).not.toContain("EADDRINUSE");
    const [deployment] = await deploymentsOf(project.repo);
    const failure = deployment!.statuses.find((s) => s.state === "failure")!;
    expect(failure.description).not.toContain("EADDRINUSE");
    expect(failure.log_url).toBe(`https://stagely.test/v1/runs/${run!.id}`);
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

describe("a deploy that Core cannot start", () => {
  it("says why on the pull request too, since the reason is Core's own", { timeout: 60_000 }, async () => {
    const project = await previewProject([sha(1)], { compose: null });
    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 14, sha: sha(1), installationId: project.installationId }));
    const failed = await eventually("the environment to fail", async () => {
      const environment = await liveEnvironment(project.projectId, 14);
      return environment?.status === "failed" ? environment : undefined;
    });
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, failed.id));
    expect(run!.errorMessage).toBe(`no docker-compose.yml (or compose.yaml) at the repository root at commit ${sha(1).slice(0, 12)}`);
    const comments = await eventually("the comment", async () => {
      const found = await commentsOf(project.repo, 14);
      return found.some((c) => c.body.includes("The deploy failed")) ? found : undefined;
    });
    expect(comments[0]!.body).toContain(`The deploy failed: ${run!.errorMessage}. Details: https://stagely.test/v1/runs/${run!.id}`);
  });
});

describe("a deploy too large for the agent protocol", () => {
  it("fails the run at once, saying why, instead of retrying it as if the cloud were down", { timeout: 60_000 }, async () => {
    const project = await previewProject([sha(1)]);
    // A file secret of 800 kB: 1.07 MB once base64-encoded in the DEPLOY command, over the 1 MiB frame limit.
    const keyring = await keyringFromConfig(getConfig(env));
    const row = { id: newId("secret"), projectId: project.projectId, key: "CA_BUNDLE", scope: "global" };
    await db.insert(secrets).values({
      ...row,
      secretType: "file",
      filePath: "/srv/app/certs/bundle.pem",
      encryptedValue: await keyring.encrypt("x".repeat(800_000), associatedData.secret(row)),
    });
    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 12, sha: sha(1), installationId: project.installationId }));
    const failed = await eventually("the environment to fail", async () => {
      const environment = await liveEnvironment(project.projectId, 12);
      return environment?.status === "failed" ? environment : undefined;
    });
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, failed.id));
    expect(run!.errorMessage).toMatch(/^the deploy cannot be sent to the preview VM: the DEPLOY command is \d+ bytes, over the agent protocol's frame limit of 1048576 bytes/);
    expect(run!.errorMessage).toContain("file secrets 1066668 bytes as base64");
  });
});
