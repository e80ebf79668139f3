import { and, eq, inArray, sql } from "drizzle-orm";
import { cloudProviders, environments, githubInstallations, liveEnvironmentStatuses, projects, pullRequests } from "../../db/schema.ts";
import { accessFrom, installationOfProject, installationStateColumns } from "../../installations/access.ts";
import { projectHasRegistry } from "../../registries/resolve.ts";
import { newSubdomainHash } from "../../lib/ids.ts";
import type { PipelineContext } from "../context.ts";
import { retireBuilders, scheduleTeam } from "../effects.ts";
import { reportRunStarted } from "../github-report.ts";
import type { PipelineMessage } from "../messages.ts";
import { loadEnvironment } from "../records.ts";
import { startRun } from "../runs.ts";
import { planRun } from "./pull-request.ts";

type RunRequested = Extract<PipelineMessage, { type: "run.requested" }>;
type PreviewRequested = Extract<PipelineMessage, { type: "preview.requested" }>;

/**
 * `preview.requested`: a preview of a pull request's head made through the API, like an opened pull request. Whether
 * its code comes from a fork is what GitHub said about the pull request (recorded from its webhooks), never the request.
 */
export async function handlePreviewRequested(ctx: PipelineContext, message: PreviewRequested): Promise<void> {
  const [found] = await ctx.db
    .select({ project: projects, pullRequest: pullRequests, installation: installationStateColumns, hasRegistry: projectHasRegistry })
    .from(projects)
    .innerJoin(pullRequests, and(eq(pullRequests.projectId, projects.id), eq(pullRequests.prNumber, message.pr_number)))
    .leftJoin(githubInstallations, installationOfProject)
    .where(eq(projects.id, message.project_id));
  if (!found || found.pullRequest.state !== "open") return;
  const { project, pullRequest } = found;
  if (pullRequest.isFork && !project.forkPreviews) {
    ctx.logger.info("preview of a fork's pull request not made (the project does not build forks)", { project_id: project.id, pr_number: message.pr_number });
    return;
  }
  const [existing] = await ctx.db
    .select({ subdomainHash: environments.subdomainHash })
    .from(environments)
    .where(and(eq(environments.projectId, project.id), eq(environments.prNumber, message.pr_number), inArray(environments.status, liveEnvironmentStatuses)));
  const subdomainHash = existing?.subdomainHash ?? newSubdomainHash();
  const [provider] = project.cloudProviderId ? await ctx.db.select().from(cloudProviders).where(eq(cloudProviders.id, project.cloudProviderId)) : [];
  const plan = await planRun(ctx, project, { commit: message.commit_hash, branch: message.branch, prNumber: message.pr_number }, subdomainHash, {
    hasProvider: Boolean(provider),
    access: accessFrom(project, found.installation),
    hasRegistry: found.hasRegistry,
  });
  const { run, superseded } = await startRun(ctx.db, {
    project,
    region: provider?.region ?? "unknown",
    prNumber: message.pr_number,
    branch: message.branch,
    commit: message.commit_hash,
    isFork: pullRequest.isFork,
    trigger: "api_requested",
    triggeredBy: message.triggered_by,
    dedupeKey: message.dedupe_key,
    plan,
    gate: sql`true`,
    subdomainHash,
    runId: message.run_id,
    environmentId: message.environment_id,
  });
  await retireBuilders(ctx, superseded, "superseded by a new run");
  await scheduleTeam(ctx, project.teamId, { publish: [run?.environment_id] });
}

/** `run.requested`: a rebuild (user) or redeploy after a secret change, of an environment's current commit. */
export async function handleRunRequested(ctx: PipelineContext, message: RunRequested): Promise<void> {
  const loaded = await loadEnvironment(ctx.db, message.environment_id);
  if (!loaded || loaded.environment.status === "terminated" || loaded.environment.status === "reaped") return;
  const { environment, project, provider } = loaded;
  const plan = await planRun(ctx, project, { commit: environment.commitHash, branch: environment.branchName, prNumber: environment.prNumber }, environment.subdomainHash, {
    hasProvider: Boolean(provider),
    access: loaded.access,
    hasRegistry: loaded.hasRegistry,
  });
  const { run, installation, superseded } = await startRun(ctx.db, {
    project,
    region: environment.region,
    prNumber: environment.prNumber,
    branch: environment.branchName,
    commit: environment.commitHash,
    isFork: environment.isFork,
    trigger: message.trigger,
    triggeredBy: message.triggered_by,
    dedupeKey: message.dedupe_key,
    plan,
    gate: sql`true`,
  });
  await retireBuilders(ctx, superseded, "superseded by a new run");
  const scheduled = await scheduleTeam(ctx, project.teamId, { publish: [environment.id] });
  if (!run) return;
  const target = { ...loaded, access: accessFrom(project, installation) };
  await reportRunStarted(ctx, target, run.id, plan, scheduled, () => `Rebuilding (${message.trigger.replace("_", " ")})`);
}
