import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { getConfig } from "../../src/config.ts";
import { associatedData } from "../../src/db/encrypted-columns.ts";
import { buildJobs, cloudProviders, secrets, workflowRuns } from "../../src/db/schema.ts";
import { keyringFromConfig } from "../../src/lib/crypto.ts";
import { newId } from "../../src/lib/ids.ts";
import { AgentDriver } from "../agent-driver.ts";
import { db, waitForQuiet } from "../db.ts";
import { pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { call } from "../harness.ts";
import { commentsOf, deploymentsOf, eventually, liveEnvironment, previewProject, runningVms, sha } from "./helpers.ts";

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
    // Each service's state, for the dashboard: the one that exited, and the healthy one.
    const detail = await call("GET", `/v1/runs/${run!.id}`, { token: project.owner.token });
    expect(detail.body.deploy_services).toEqual([
      { name: "api", status: "exited", health: "unhealthy", port: null },
      { name: "web", status: "running", health: "healthy", port: null },
    ]);
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

describe("a build whose VM the cloud refuses", () => {
  it("fails the run once on GitHub: no \"building\" after the failure, one deployment", { timeout: 60_000 }, async () => {
    const project = await previewProject([sha(1)], { yaml: "version: 2\nbuilds:\n  web:\n    context: ./web\n    platform: linux/amd64\n" });
    // The local cloud answers 400 (not retried) to a VM without a region: the build fails while the webhook's own
    // step provisions it, before that step reports "building".
    await db.update(cloudProviders).set({ region: "" }).where(eq(cloudProviders.id, project.providerId));
    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 13, sha: sha(1), installationId: project.installationId }));
    const failed = await eventually("the environment to fail", async () => {
      const environment = await liveEnvironment(project.projectId, 13);
      return environment?.status === "failed" ? environment : undefined;
    });
    const [job] = await db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, (await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, failed.id)))[0]!.id));
    expect(job!.errorMessage).toMatch(/^could not create the preview VM: /);
    await waitForQuiet();
    const deployments = (await deploymentsOf(project.repo)).filter((d) => d.statuses.length > 0);
    expect(deployments).toHaveLength(1);
    expect(deployments[0]!.statuses.map((s) => s.state)).toEqual(["failure"]);
    const comments = await commentsOf(project.repo, 13);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain("The preview failed");
  });
});

describe("a pull request with a broken compose file", () => {
  it("gets a failed run naming the file, before any VM exists, shown inert on GitHub", { timeout: 60_000 }, async () => {
    const hostileName = "@octocat [pwned](https://evil.example) <b>x</b>\u202Egnp";
    const compose = `services:\n  web: {image: web, ports: ["80:3000"]}\n  "${hostileName}": {image: x}\n  api: {image: api, ports: ["http:8080"]}\n`;
    const project = await previewProject([sha(1)], { compose });
    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 12, sha: sha(1), installationId: project.installationId }));
    const failed = await eventually("the environment to fail", async () => {
      const environment = await liveEnvironment(project.projectId, 12);
      return environment?.status === "failed" ? environment : undefined;
    });
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, failed.id));
    const expected = [
      'docker-compose.yml: services["@octocat [pwned](https://evil.example) <…"] is not a valid service name (letters, digits, _, . and -, at most 63 characters)',
      'docker-compose.yml: services.api.ports[0] has a host port "http" that is not a port (1-65535) or range',
    ].join("\n");
    expect(run).toMatchObject({ status: "failed", result: "failure", errorMessage: expected, config: null, composeFile: null });
    expect(await db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, run!.id))).toEqual([]);
    expect(failed.vmId).toBeNull();
    expect(await runningVms(project.providerId, { environment_id: failed.id })).toEqual([]);

    const [comment] = await eventually("the comment", async () => {
      const found = await commentsOf(project.repo, 12);
      return found.length ? found : undefined;
    });
    // The errors are inside a code block: GitHub renders no mention, link or HTML there.
    expect(comment!.body).toContain(`The preview could not start:\n\n\`\`\`text\n${expected}\n\`\`\``);
    expect(comment!.body.split("```")[0]).not.toMatch(/@octocat|evil\.example|<b>/);
    expect(comment!.body).not.toContain("\u202E");
  });
});

describe("a pull request whose compose file GitHub will not serve", () => {
  it("fails the run with GitHub's reason at once (a file over 1 MB is not retried)", { timeout: 60_000 }, async () => {
    const project = await previewProject([sha(1)], { compose: `services:\n  web: {image: web, ports: ["80:3000"]}\n# ${"x".repeat(1_100_000)}\n` });
    await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: project.repo, number: 13, sha: sha(1), installationId: project.installationId }));
    const failed = await eventually("the environment to fail", async () => {
      const environment = await liveEnvironment(project.projectId, 13);
      return environment?.status === "failed" ? environment : undefined;
    });
    const [run] = await db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, failed.id));
    expect(run!.errorMessage).toBe(`docker-compose.yml could not be read: docker-compose.yml in ${project.repo} is too large to read through GitHub's contents API (over 1 MB)`);
    expect(failed.vmId).toBeNull();
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
    // A reason of Core's own reaches the pull request, inert, next to the link to the run.
    const comments = await eventually("the comment", async () => {
      const found = await commentsOf(project.repo, 12);
      return found.some((c) => c.body.includes("The deploy failed")) ? found : undefined;
    });
    expect(comments[0]!.body).toContain(`The deploy failed. What happened: https://stagely.test/v1/runs/${run!.id}`);
    expect(comments[0]!.body).toContain("over the agent protocol's frame limit");
  });
});
