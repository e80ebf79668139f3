import { env } from "cloudflare:workers";
import { and, eq, isNull } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { connect, hello } from "../../../test/agents/helpers.ts";
import { countRoundTrips, db, waitForQuiet } from "../../../test/db.ts";
import { previewProject, runningVms, sha } from "../../../test/e2e/helpers.ts";
import { fakeUrl } from "../../../test/fakes/urls.ts";
import { seedSecret } from "../../../test/harness.ts";
import { agentConnections, buildJobs, environments, workflowRuns } from "../../db/schema.ts";
import { newId, newSubdomainHash } from "../../lib/ids.ts";
import { Logger } from "../../lib/logger.ts";
import { pipelineContext } from "../context.ts";
import { PreviewVmPendingError } from "../preview-vm.ts";
import { handleProvisionBuild } from "./build.ts";
import { handleDeploy } from "./deploy.ts";

// Database round trips of provisioning a build and of deploying: every one costs 100+ ms from a far location.

const CONFIG = { version: 2, builds: [], preview: { size: "small", lifecycle: { on_start: [] } } };

/** A building environment with no VM yet, its run, and a provisioning job per name (default mode unless `registry`). */
async function buildingRun(names: string[], options: { registry?: string; isFork?: boolean } = {}) {
  const project = await previewProject([sha(1)], { registry: options.registry });
  const environmentId = newId("environment");
  const runId = newId("workflowRun");
  const jobIds = names.map(() => newId("buildJob"));
  await db.batch([
    db.insert(environments).values({ id: environmentId, projectId: project.projectId, prNumber: 7, branchName: "f", commitHash: sha(1), subdomainHash: newSubdomainHash(), cloudProviderId: project.providerId, size: "small", region: "local", status: "building", isFork: options.isFork ?? false }),
    db.insert(workflowRuns).values({ id: runId, environmentId, trigger: "pr_opened", commitHash: sha(1), status: "building", composeFile: "services:\n  web:\n    build: .\n", config: CONFIG }),
    ...names.map((name, i) =>
      db.insert(buildJobs).values({ id: jobIds[i]!, workflowRunId: runId, name, architecture: "amd64", contextPath: ".", dockerfilePath: "Dockerfile", status: "provisioning", cloudProviderId: project.providerId }),
    ),
  ]);
  return { ...project, environmentId, runId, jobIds };
}

const previewAgentsOf = (environmentId: string) =>
  db.select().from(agentConnections).where(and(eq(agentConnections.environmentId, environmentId), eq(agentConnections.role, "preview"), isNull(agentConnections.revokedAt)));

async function quietContext() {
  const ctx = await pipelineContext(env, new Logger("error"));
  await waitForQuiet();
  return ctx;
}

describe("provisioning a build (default mode): its round trips", () => {
  it("the first job: one read, the claim with its agent row, the VM's record; a later job of the run: the read alone", async () => {
    const { environmentId, providerId, jobIds } = await buildingRun(["api_amd64", "web_amd64"]);
    const ctx = await quietContext();
    expect(await countRoundTrips(() => handleProvisionBuild(ctx, jobIds[0]!))).toBe(3);
    const [environment] = await db.select().from(environments).where(eq(environments.id, environmentId));
    expect(environment).toMatchObject({ vmId: expect.any(String), vmStatus: expect.any(String) });
    expect(await previewAgentsOf(environmentId)).toHaveLength(1);

    expect(await countRoundTrips(() => handleProvisionBuild(ctx, jobIds[1]!))).toBe(1);
    expect((await runningVms(providerId, { environment_id: environmentId })).map((vm) => vm.id)).toEqual([environment!.vmId]);
    expect(await previewAgentsOf(environmentId)).toHaveLength(1);
  });

  it("two jobs at once: one creates the VM, the other is told to retry and leaves no agent row; its retry uses the VM", async () => {
    const { environmentId, providerId, jobIds } = await buildingRun(["api_amd64", "web_amd64"]);
    const ctx = await quietContext();
    const outcomes = await Promise.allSettled(jobIds.map((id) => handleProvisionBuild(ctx, id)));
    const lost = outcomes.filter((o) => o.status === "rejected");
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(PreviewVmPendingError);
    const agents = await previewAgentsOf(environmentId);
    expect(agents).toHaveLength(1);

    const retried = jobIds[outcomes.findIndex((o) => o.status === "rejected")]!;
    expect(await countRoundTrips(() => handleProvisionBuild(ctx, retried))).toBe(1);
    expect(await runningVms(providerId, { environment_id: environmentId })).toHaveLength(1);
    expect((await previewAgentsOf(environmentId)).map((a) => a.agentId)).toEqual(agents.map((a) => a.agentId));
  });

  it("a claim still fresh elsewhere: the job is retried later and no agent row is left", async () => {
    const { environmentId, jobIds } = await buildingRun(["api_amd64"]);
    await db.update(environments).set({ vmStatus: "provisioning" }).where(eq(environments.id, environmentId));
    const ctx = await quietContext();
    await expect(handleProvisionBuild(ctx, jobIds[0]!)).rejects.toBeInstanceOf(PreviewVmPendingError);
    expect(await previewAgentsOf(environmentId)).toEqual([]);
  });
});

describe("provisioning a build (registry mode): its round trips", () => {
  it("one read, the builder's agent row with the job's agent id, the VM's record", async () => {
    const { jobIds } = await buildingRun(["api_amd64"], { registry: "registry.example.test" });
    const ctx = await quietContext();
    expect(await countRoundTrips(() => handleProvisionBuild(ctx, jobIds[0]!))).toBe(3);
    const [job] = await db.select().from(buildJobs).where(eq(buildJobs.id, jobIds[0]!));
    expect(job).toMatchObject({ vmId: expect.any(String), agentId: expect.any(String) });
  });
});

describe("deploying: its round trips", () => {
  async function deployedRun(options: { isFork?: boolean } = {}) {
    const run = await buildingRun(["web_amd64"], options);
    await seedSecret(run.projectId, "API_KEY", "deploy-secret-value-0123");
    const ctx = await quietContext();
    await handleProvisionBuild(ctx, run.jobIds[0]!);
    await db.batch([
      db.update(buildJobs).set({ status: "completed", artifactUrl: "sha256:1" }).where(eq(buildJobs.id, run.jobIds[0]!)),
      db.update(workflowRuns).set({ status: "deploying" }).where(eq(workflowRuns.id, run.runId)),
      db.update(environments).set({ status: "deploying" }).where(eq(environments.id, run.environmentId)),
    ]);
    const [agent] = await previewAgentsOf(run.environmentId);
    return { ...run, ctx, agentId: agent!.agentId };
  }

  async function deployReceived(agentId: string) {
    const { started } = (await (await fetch(`${fakeUrl("local-cloud")}/_fake/agents?agent_id=${agentId}`)).json()) as { started: { token: string }[] };
    const client = await connect(started[0]!.token);
    client.send(hello(agentId, "1.1.0"));
    const deploy = await client.next("DEPLOY");
    client.close();
    return deploy;
  }

  it("one read: run, environment, registry, preview agent, build jobs and secrets in one batch", async () => {
    const { ctx, runId, agentId } = await deployedRun();
    await waitForQuiet();
    expect(await countRoundTrips(() => handleDeploy(ctx, runId))).toBe(1);
    const deploy = await deployReceived(agentId);
    expect(deploy.images).toEqual({ web: "sha256:1" });
    expect(deploy.secrets).toEqual([
      { key: "API_KEY", value: "deploy-secret-value-0123", scope: "global" },
      { key: "API_KEY", value: "deploy-secret-value-0123", scope: "web" },
    ]);
  });

  it("a fork's deploy: the same one read, and no secrets", async () => {
    const { ctx, runId, agentId } = await deployedRun({ isFork: true });
    await waitForQuiet();
    expect(await countRoundTrips(() => handleDeploy(ctx, runId))).toBe(1);
    const deploy = await deployReceived(agentId);
    expect(deploy.secrets).toEqual([]);
    expect(deploy.files).toEqual([]);
  });
});
