import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { issueAgentToken } from "../../src/agents/issue-token.ts";
import { buildJobs, environments, workflowRuns } from "../../src/db/schema.ts";
import { newId, newSubdomainHash } from "../../src/lib/ids.ts";
import { Logger } from "../../src/lib/logger.ts";
import { pipelineContext } from "../../src/pipeline/context.ts";
import { handleDeploy } from "../../src/pipeline/steps/deploy.ts";
import { connect, hello } from "../agents/helpers.ts";
import { db } from "../db.ts";
import { previewProject, sha } from "../e2e/helpers.ts";

// The DEPLOY a preview agent receives says what the preview URL reaches: the run's stagely.yaml preview.expose and
// preview.routes (protocol v1.1), or nothing for a run whose config does not say.

async function deployOf(preview: Record<string, unknown>) {
  const { projectId, providerId } = await previewProject([sha(1)]);
  const environmentId = newId("environment");
  const runId = newId("workflowRun");
  await db.batch([
    db.insert(environments).values({ id: environmentId, projectId, prNumber: 5, branchName: "f", commitHash: sha(1), subdomainHash: newSubdomainHash(), cloudProviderId: providerId, size: "small", region: "local", status: "deploying", vmId: "vm-existing", vmStatus: "running" }),
    db.insert(workflowRuns).values({ id: runId, environmentId, trigger: "pr_opened", commitHash: sha(1), status: "deploying", composeFile: "services:\n  web:\n    build: .\n", config: { version: 2, builds: [], preview: { size: "small", lifecycle: { on_start: [] }, ...preview } } }),
    db.insert(buildJobs).values({ id: newId("buildJob"), workflowRunId: runId, name: "web_amd64", architecture: "amd64", contextPath: ".", dockerfilePath: "Dockerfile", status: "completed", artifactUrl: "registry.local/web@sha256:1" }),
  ]);
  const { agentId, token } = await issueAgentToken(env, db, { role: "preview", environmentId });
  await handleDeploy(await pipelineContext(env, new Logger("warn")), runId);
  const agent = await connect(token);
  agent.send(hello(agentId, "1.1.0"));
  const deploy = await agent.next("DEPLOY");
  agent.close();
  return deploy;
}

describe("DEPLOY's preview field", () => {
  it("carries the run's preview.expose and preview.routes", async () => {
    const exposure = { expose: { service: "web", port: 3000 }, routes: [{ name: "api", service: "api", port: 8080 }] };
    const deploy = await deployOf(exposure);
    expect(deploy.images).toEqual({ web: "registry.local/web@sha256:1" });
    expect(deploy.preview).toEqual(exposure);
  });

  it("is null when the run's config says nothing about what to expose", async () => {
    expect((await deployOf({})).preview).toBeNull();
  });
});
