import { env } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { countRoundTrips, db, waitForQuiet } from "../../../test/db.ts";
import { previewProject, pullRequestMessage, sha } from "../../../test/e2e/helpers.ts";
import { fakeUrl } from "../../../test/fakes/urls.ts";
import { environments, workflowRuns } from "../../db/schema.ts";
import { Logger } from "../../lib/logger.ts";
import { pipelineContext } from "../context.ts";
import type { PullRequestMessage } from "../messages.ts";
import { previewUrl } from "../records.ts";
import { handlePullRequest } from "./pull-request.ts";

function pullRequest(repo: string, installationId: number, changes: Partial<PullRequestMessage>): PullRequestMessage {
  return pullRequestMessage(repo, installationId, { updated_at: "2026-11-30T10:00:00.000Z", ...changes });
}

async function deployments(repo: string) {
  const response = await fetch(`${fakeUrl("github")}/_fake/repos/${repo}/deployments`);
  return (await response.json()) as { id: number; statuses: { state: string; description: string }[] }[];
}

describe("the pull_request step", () => {
  it("reads everything it needs in one round trip, and reports to GitHub from what starting the run returned", async () => {
    const { repo, installationId, projectId } = await previewProject([sha(1), sha(2)], { quota: { environments: 1 } });
    const ctx = await pipelineContext(env, new Logger("error"));
    // Another pull request holds the team's one environment: this one waits, so nothing is provisioned and the
    // counts below are the step's alone.
    await handlePullRequest(ctx, pullRequest(repo, installationId, { pr_number: 4 }));
    await waitForQuiet();

    // The match with every per-project read, startRun, scheduling the team (with the host's snapshot), recording the
    // GitHub deployment and comment ids.
    expect(await countRoundTrips(() => handlePullRequest(ctx, pullRequest(repo, installationId, {})))).toBe(4);
    const [environment] = await db.select().from(environments).where(and(eq(environments.projectId, projectId), eq(environments.prNumber, 5)));
    expect(environment).toMatchObject({ status: "pending", commitHash: sha(1), githubDeploymentId: expect.any(Number), githubCommentId: expect.any(Number) });
    const first = (await deployments(repo)).find((d) => d.id === environment!.githubDeploymentId);
    expect(first!.statuses.at(-1)).toMatchObject({ state: "in_progress", description: `Building 2 image(s) for ${previewUrl(environment!.subdomainHash, ctx.config)}` });

    // A push: the live environment's hash is kept and its deployment reused (the ids came back from startRun), so
    // the report writes nothing.
    const pushed = pullRequest(repo, installationId, { action: "synchronize", head_sha: sha(2), updated_at: "2026-11-30T10:05:00.000Z" });
    expect(await countRoundTrips(() => handlePullRequest(ctx, pushed))).toBe(3);
    const [after] = await db.select().from(environments).where(and(eq(environments.projectId, projectId), eq(environments.prNumber, 5)));
    expect(after).toMatchObject({ id: environment!.id, subdomainHash: environment!.subdomainHash, commitHash: sha(2), githubDeploymentId: environment!.githubDeploymentId });
    const reused = (await deployments(repo)).find((d) => d.id === environment!.githubDeploymentId);
    expect(reused!.statuses).toHaveLength(2);

    // A late delivery of an older event: the match query says it is stale, and nothing else happens.
    const runs = await db.select({ id: workflowRuns.id }).from(workflowRuns).where(eq(workflowRuns.environmentId, environment!.id));
    const late = pullRequest(repo, installationId, { action: "synchronize", head_sha: sha(3), updated_at: "2026-11-30T10:01:00.000Z" });
    expect(await countRoundTrips(() => handlePullRequest(ctx, late))).toBe(1);
    expect(await db.select({ id: workflowRuns.id }).from(workflowRuns).where(eq(workflowRuns.environmentId, environment!.id))).toHaveLength(runs.length);
  });

  it("a fork's pull request on a project that does not build forks costs the match query only", async () => {
    const { repo, installationId, projectId } = await previewProject([sha(1)]);
    const ctx = await pipelineContext(env, new Logger("error"));
    await waitForQuiet();
    expect(await countRoundTrips(() => handlePullRequest(ctx, pullRequest(repo, installationId, { is_fork: true })))).toBe(1);
    expect(await db.select().from(environments).where(eq(environments.projectId, projectId))).toEqual([]);
  });
});
