import { and, eq, inArray } from "drizzle-orm";
import { cloudProviders, environments, liveEnvironmentStatuses, projects } from "../../db/schema.ts";
import { newSubdomainHash } from "../../lib/ids.ts";
import type { PipelineContext } from "../context.ts";
import { retireBuilders, scheduleTeam } from "../effects.ts";
import { isGitHubError } from "../github-app.ts";
import { reportToGitHub } from "../github-report.ts";
import type { PullRequestMessage } from "../messages.ts";
import { eventIsCurrent, isStale, recordPullRequestEvent, type PullRequestEvent } from "../pull-requests.ts";
import { loadEnvironment, previewUrl, repoOf } from "../records.ts";
import { startRun, type RunPlan } from "../runs.ts";
import { buildJobsOf, parseStagelyYaml } from "../stagely-yaml.ts";
import { publishPreviewHosts } from "../../preview/snapshot.ts";
import { endEnvironment } from "../transitions.ts";
import { teardownEffects } from "./teardown.ts";

type Project = typeof projects.$inferSelect;

/** A pull_request webhook, for every active project of the repository. */
export async function handlePullRequest(ctx: PipelineContext, message: PullRequestMessage): Promise<void> {
  const matching = await ctx.db
    .select()
    .from(projects)
    .where(and(eq(projects.repoUrl, `https://github.com/${message.repository.toLowerCase()}`), eq(projects.isActive, true)));
  for (const project of matching) await handleForProject(ctx, message, project);
}

async function handleForProject(ctx: PipelineContext, message: PullRequestMessage, project: Project): Promise<void> {
  const event: PullRequestEvent = {
    projectId: project.id,
    action: message.action,
    prNumber: message.pr_number,
    headSha: message.head_sha,
    headRef: message.head_ref,
    isFork: message.is_fork,
    updatedAt: message.updated_at,
  };
  if (message.installation_id !== null && project.githubInstallationId !== message.installation_id) {
    await ctx.db.update(projects).set({ githubInstallationId: message.installation_id }).where(eq(projects.id, project.id));
  }

  if (message.action === "closed") {
    const target = await endEnvironment(ctx.db, { projectId: project.id, prNumber: message.pr_number }, "terminated", eventIsCurrent(event), [
      recordPullRequestEvent(ctx.db, event),
    ]);
    if (target) await teardownEffects(ctx, target, project.teamId, "the pull request was closed");
    return;
  }
  if (message.is_fork && !project.forkPreviews) {
    ctx.logger.info("pull request from a fork ignored (the project does not build forks)", { project_id: project.id, pr_number: message.pr_number });
    return;
  }
  if (await isStale(ctx.db, event)) return;

  const [existing] = await ctx.db
    .select({ id: environments.id, subdomainHash: environments.subdomainHash })
    .from(environments)
    .where(and(eq(environments.projectId, project.id), eq(environments.prNumber, message.pr_number), inArray(environments.status, liveEnvironmentStatuses)));
  const subdomainHash = existing?.subdomainHash ?? newSubdomainHash();
  const [provider] = project.cloudProviderId ? await ctx.db.select().from(cloudProviders).where(eq(cloudProviders.id, project.cloudProviderId)) : [];
  const plan = await planRun(ctx, project, { commit: message.head_sha, branch: message.head_ref, prNumber: message.pr_number }, subdomainHash, Boolean(provider));

  const { run, superseded } = await startRun(
    ctx.db,
    {
      project,
      region: provider?.region ?? "unknown",
      prNumber: message.pr_number,
      branch: message.head_ref,
      commit: message.head_sha,
      isFork: message.is_fork,
      trigger: message.action === "synchronize" ? "pr_synchronized" : "pr_opened",
      triggeredBy: message.sender,
      dedupeKey: `pr:${message.delivery_id}:${project.id}`,
      plan,
      gate: eventIsCurrent(event),
      subdomainHash,
    },
    [recordPullRequestEvent(ctx.db, event)],
  );
  await retireBuilders(ctx, superseded, "superseded by a newer commit");
  await publishPreviewHosts(ctx.env, ctx.db, [run?.environment_id], ctx.logger);
  await scheduleTeam(ctx, project.teamId);
  if (!run) return;
  const target = await loadEnvironment(ctx.db, run.environment_id);
  if (target) {
    await reportToGitHub(ctx, target, plan.ok ? "in_progress" : "failure", {
      message: plan.ok ? `Building ${plan.jobs.length} image(s) for ${previewUrl(target.environment.subdomainHash, ctx.config.PREVIEW_DOMAIN)}` : plan.error,
      runId: run.id,
    });
  }
}

/** Reads and checks stagely.yaml at the pull request's head commit. Transient GitHub errors throw (the message is retried). */
export async function planRun(
  ctx: PipelineContext,
  project: Project,
  at: { commit: string; branch: string; prNumber: number },
  subdomainHash: string,
  hasProvider: boolean,
): Promise<RunPlan> {
  if (!hasProvider) return { ok: false, error: "the project has no cloud provider: set cloud_provider_id on the project" };
  if (!ctx.github) return { ok: false, error: "this Stagely server has no GitHub App configured (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)" };
  let text: string | null;
  try {
    text = await ctx.github.getFileContent(repoOf(project.repoUrl), "stagely.yaml", at.commit);
  } catch (error) {
    if (isGitHubError(error) && (error.kind === "not_found" || error.kind === "unauthorized")) {
      return { ok: false, error: `stagely.yaml could not be read: ${error.message}` };
    }
    throw error;
  }
  if (text === null) return { ok: false, error: `stagely.yaml: not found at the repository root at commit ${at.commit.slice(0, 12)}` };
  const parsed = parseStagelyYaml(text, {
    defaultPreviewSize: project.defaultPreviewSize,
    variables: {
      STAGELY_HASH: subdomainHash,
      STAGELY_PREVIEW_URL: previewUrl(subdomainHash, ctx.config.PREVIEW_DOMAIN),
      COMMIT_HASH: at.commit,
      BRANCH: at.branch,
      PR_NUMBER: at.prNumber,
      PROJECT_ID: project.id,
    },
  });
  if (!parsed.ok) return { ok: false, error: parsed.errors.join("\n") };
  return {
    ok: true,
    config: parsed.config,
    previewSize: parsed.config.preview.size,
    jobs: buildJobsOf(parsed.config).map((job) => ({
      name: job.name,
      architecture: job.architecture,
      contextPath: job.context_path,
      dockerfilePath: job.dockerfile_path,
      machine: job.machine,
      timeoutSeconds: job.timeout_seconds,
    })),
  };
}
