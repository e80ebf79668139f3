import { and, eq, inArray, sql } from "drizzle-orm";
import { cloudProviders, environments, githubInstallations, liveEnvironmentStatuses, projects } from "../../db/schema.ts";
import { accessFrom, installationStateColumns, type InstallationState, type RepositoryAccess } from "../../installations/access.ts";
import { newSubdomainHash } from "../../lib/ids.ts";
import type { PipelineContext } from "../context.ts";
import { retireBuilders, scheduleTeam } from "../effects.ts";
import { isGitHubError, type RepoRef } from "../github-app.ts";
import { reportRunStarted } from "../github-report.ts";
import type { PullRequestMessage } from "../messages.ts";
import { eventIsCurrent, newerEventApplied, recordPullRequestEvent, recordPullRequestTitle, type PullRequestEvent } from "../pull-requests.ts";
import { previewUrl } from "../records.ts";
import { startRun, type RunPlan } from "../runs.ts";
import { COMPOSE_FILE_NAMES, parseComposeFile, type ComposeFile } from "../compose-file.ts";
import { parseStagelyYaml } from "../stagely-yaml.ts";
import { jobsForMode } from "../build-mode.ts";
import { projectHasRegistry } from "../../registries/resolve.ts";
import { endEnvironment } from "../transitions.ts";
import { teardownEffects } from "./teardown.ts";

type Project = typeof projects.$inferSelect;

/**
 * A pull_request webhook, for the active projects of the repository in the team that owns the installation it came
 * through: another team's project on the same repository never hears of it. One query reads, per project, all the
 * step needs before GitHub is asked for stagely.yaml: whether the event is stale, the live environment, the cloud
 * account, registry mode and the installation's state (the repository access).
 */
export async function handlePullRequest(ctx: PipelineContext, message: PullRequestMessage): Promise<void> {
  const matching = await ctx.db
    .select({
      project: projects,
      installation: installationStateColumns,
      stale: newerEventApplied({ projectId: projects.id, prNumber: message.pr_number, updatedAt: message.updated_at }),
      liveSubdomainHash: sql<string | null>`(SELECT ${environments.subdomainHash} FROM ${environments}
        WHERE ${environments.projectId} = ${projects.id} AND ${environments.prNumber} = ${message.pr_number} AND ${inArray(environments.status, liveEnvironmentStatuses)})`,
      provider: { id: cloudProviders.id, region: cloudProviders.region },
      hasRegistry: projectHasRegistry,
    })
    .from(projects)
    // The installation the webhook came through, which the project uses from now on (see handleForProject).
    .innerJoin(githubInstallations, and(eq(githubInstallations.teamId, projects.teamId), eq(githubInstallations.id, message.installation_id)))
    .leftJoin(cloudProviders, eq(cloudProviders.id, projects.cloudProviderId))
    .where(and(eq(projects.repoUrl, `https://github.com/${message.repository.toLowerCase()}`), eq(projects.isActive, true)));
  for (const found of matching) await handleForProject(ctx, message, found);
}

interface ProjectState {
  project: Project;
  installation: InstallationState;
  stale: boolean;
  liveSubdomainHash: string | null;
  provider: { id: string; region: string } | null;
  hasRegistry: boolean;
}

async function handleForProject(ctx: PipelineContext, message: PullRequestMessage, found: ProjectState): Promise<void> {
  let project = found.project;
  if (message.action === "edited") {
    await recordPullRequestTitle(ctx.db, { projectId: project.id, prNumber: message.pr_number, title: message.title, updatedAt: message.updated_at });
    return;
  }
  const event: PullRequestEvent = {
    projectId: project.id,
    action: message.action,
    prNumber: message.pr_number,
    headSha: message.head_sha,
    headRef: message.head_ref,
    title: message.title,
    isFork: message.is_fork,
    updatedAt: message.updated_at,
  };
  if (project.githubInstallationId !== message.installation_id) {
    // The team re-installed the App (a new installation id) and GitHub says it covers the repository.
    await ctx.db.update(projects).set({ githubInstallationId: message.installation_id }).where(eq(projects.id, project.id));
    project = { ...project, githubInstallationId: message.installation_id };
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
  if (found.stale) return;
  // The installation state was read for the installation the webhook came through, which is now the project's.
  const access = accessFrom(project, found.installation);
  const subdomainHash = found.liveSubdomainHash ?? newSubdomainHash();
  const plan = await planRun(ctx, project, { commit: message.head_sha, branch: message.head_ref, prNumber: message.pr_number }, subdomainHash, {
    hasProvider: found.provider !== null,
    access,
    hasRegistry: found.hasRegistry,
  });

  const { run, environment, installation, superseded } = await startRun(
    ctx.db,
    {
      project,
      region: found.provider?.region ?? "unknown",
      prNumber: message.pr_number,
      branch: message.head_ref,
      commit: message.head_sha,
      isFork: message.is_fork,
      trigger: message.action === "synchronize" ? "pr_synchronized" : "pr_opened",
      triggeredBy: message.sender,
      githubSender: message.sender,
      dedupeKey: `pr:${message.delivery_id}:${project.id}`,
      plan,
      gate: eventIsCurrent(event),
      subdomainHash,
    },
    [recordPullRequestEvent(ctx.db, event)],
  );
  await retireBuilders(ctx, superseded, "superseded by a newer commit");
  const scheduled = await scheduleTeam(ctx, project.teamId, { publish: [run?.environment_id] });
  if (!run || !environment) return;
  // The access as startRun read it, for the report: not the one read before GitHub was asked for the files.
  const target = { environment, project, access: accessFrom(project, installation) };
  await reportRunStarted(ctx, target, run.id, plan, scheduled, (ok) => `Building ${ok.jobs.length} image(s) for ${previewUrl(environment.subdomainHash, ctx.config)}`);
}

type FileRead = { ok: true; text: string | null } | { ok: false; error: string };

/** A file of the repository at a commit (null when absent). GitHub errors that retrying cannot fix are answers; others throw. */
async function readRepositoryFile(ctx: PipelineContext, repo: RepoRef, path: string, commit: string): Promise<FileRead> {
  try {
    return { ok: true, text: await ctx.github!.getFileContent(repo, path, commit) };
  } catch (error) {
    if (isGitHubError(error) && !error.retryable) return { ok: false, error: `${path} could not be read: ${error.message}` };
    throw error;
  }
}

/** The first compose file found at the repository root, parsed; its text is what the deploy sends. */
async function readComposeFile(ctx: PipelineContext, repo: RepoRef, commit: string): Promise<{ ok: true; file: ComposeFile; text: string } | { ok: false; errors: string[] }> {
  for (const name of COMPOSE_FILE_NAMES) {
    const read = await readRepositoryFile(ctx, repo, name, commit);
    if (!read.ok) return { ok: false, errors: [read.error] };
    if (read.text === null) continue;
    const parsed = parseComposeFile(read.text, name);
    return parsed.ok ? { ok: true, file: parsed.file, text: read.text } : parsed;
  }
  return { ok: false, errors: [`${COMPOSE_FILE_NAMES[0]}: not found at the repository root at commit ${commit.slice(0, 12)} (nor ${COMPOSE_FILE_NAMES.slice(1).join(", ")})`] };
}

/** What planning a run needs to know about the project, read with the step's other data (no query of its own). */
export interface PlanFacts {
  hasProvider: boolean;
  /** Decided by `accessFrom` from installation state read in the same step. */
  access: RepositoryAccess;
  hasRegistry: boolean;
}

/**
 * Reads and checks stagely.yaml and the compose file at the pull request's head commit, before anything is built
 * or any VM exists. Problems of both files are reported together. Transient GitHub errors throw (the message is retried).
 */
export async function planRun(
  ctx: PipelineContext,
  project: Project,
  at: { commit: string; branch: string; prNumber: number },
  subdomainHash: string,
  facts: PlanFacts,
): Promise<RunPlan> {
  if (!facts.hasProvider) return { ok: false, error: "the project has no cloud provider: set cloud_provider_id on the project" };
  if (!ctx.github) return { ok: false, error: "this Stagely server has no GitHub App configured (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)" };
  const access = facts.access;
  if (!access.ok) return { ok: false, error: access.reason };
  // Both files from GitHub at once (the compose file is read even when stagely.yaml turns out to be missing).
  const [stagelyYaml, compose] = await Promise.all([readRepositoryFile(ctx, access.repo, "stagely.yaml", at.commit), readComposeFile(ctx, access.repo, at.commit)]);
  if (!stagelyYaml.ok) return { ok: false, error: stagelyYaml.error };
  if (stagelyYaml.text === null) return { ok: false, error: `stagely.yaml: not found at the repository root at commit ${at.commit.slice(0, 12)}` };
  const parsed = parseStagelyYaml(stagelyYaml.text, {
    defaultPreviewSize: project.defaultPreviewSize,
    variables: {
      STAGELY_HASH: subdomainHash,
      STAGELY_PREVIEW_URL: previewUrl(subdomainHash, ctx.config),
      COMMIT_HASH: at.commit,
      BRANCH: at.branch,
      PR_NUMBER: at.prNumber,
      PROJECT_ID: project.id,
    },
    compose: compose.ok ? compose.file : null,
  });
  if (!parsed.ok || !compose.ok) return { ok: false, error: [...(parsed.ok ? [] : parsed.errors), ...(compose.ok ? [] : compose.errors)].join("\n") };
  return {
    ok: true,
    config: parsed.config,
    composeFile: compose.text,
    previewSize: parsed.config.preview.size,
    jobs: jobsForMode(parsed.config, facts.hasRegistry).map((job) => ({
      name: job.name,
      architecture: job.architecture,
      contextPath: job.context_path,
      dockerfilePath: job.dockerfile_path,
      machine: job.machine,
      timeoutSeconds: job.timeout_seconds,
    })),
  };
}
