import { eq } from "drizzle-orm";
import { environments } from "../db/schema.ts";
import type { RepositoryAccess } from "../installations/access.ts";
import type { PipelineContext } from "./context.ts";
import type { DeploymentState } from "./github-app.ts";
import { inertCodeBlock, inertText } from "./github-text.ts";
import { previewUrl } from "./records.ts";
import type { RunPlan } from "./runs.ts";

/** GitHub's limit for a deployment status description. */
const DESCRIPTION_CHARS = 140;

/** Marks the one comment of a project on a pull request: two projects on one repository each keep their own. */
export function commentMarker(projectId: string): string {
  return `<!-- stagely:preview project=${projectId} -->`;
}

interface ReportTarget {
  environment: { id: string; prNumber: number; commitHash: string; subdomainHash: string; githubDeploymentId: number | null; githubCommentId: number | null };
  project: { id: string };
  /** The repository access read with the target (records.ts loaders): reporting costs no database read of its own. */
  access: RepositoryAccess;
}

/**
 * What to tell GitHub. `message` is Stagely's own markdown (it may hold links Stagely made); `detail` is text from
 * the repository or an agent (errors, names, log lines), shown inert in a code block (github-text.ts).
 */
export interface ReportDetails {
  message: string;
  detail?: string;
  runId?: string;
}

/**
 * Tells GitHub how the preview is doing: a Deployment with statuses and one PR comment that is edited, never
 * repeated. Best effort: GitHub being down must not stop a preview, so failures are logged, not retried.
 */
export async function reportToGitHub(ctx: PipelineContext, target: ReportTarget, state: DeploymentState, details: ReportDetails): Promise<void> {
  const github = ctx.github;
  if (!github) return;
  const access = target.access;
  if (!access.ok) {
    ctx.logger.warn("not reported to GitHub", { environment_id: target.environment.id, state, reason: access.reason });
    return;
  }
  const repo = access.repo;
  const url = previewUrl(target.environment.subdomainHash, ctx.config);
  const logUrl = details.runId ? `${ctx.config.PUBLIC_URL}/v1/runs/${details.runId}` : undefined;
  try {
    let deploymentId = target.environment.githubDeploymentId;
    if (deploymentId === null) {
      const deployment = await github.createDeployment(repo, {
        ref: target.environment.commitHash,
        environment: `preview/pr-${target.environment.prNumber}`,
        description: "Stagely preview",
        payload: { environment_id: target.environment.id },
      });
      deploymentId = deployment.id;
    }
    await github.createDeploymentStatus(repo, deploymentId, {
      state,
      description: inertText(details.detail ? `${details.message} ${details.detail}` : details.message, DESCRIPTION_CHARS).replace(/\s+/g, " "),
      ...(state === "success" ? { environment_url: url } : {}),
      ...(logUrl ? { log_url: logUrl } : {}),
    });
    const headline = {
      in_progress: "⏳ Building the preview",
      success: `✅ Preview ready: ${url}`,
      failure: "❌ The preview failed",
      error: "❌ The preview failed",
      inactive: "🧹 The preview was removed",
    }[state];
    const comment = await github.upsertPullRequestComment(
      repo,
      target.environment.prNumber,
      `**Stagely** · ${headline}\n\n${details.message}${details.detail ? `\n\n${inertCodeBlock(details.detail)}` : ""}\n\nCommit \`${target.environment.commitHash.slice(0, 12)}\``,
      commentMarker(target.project.id),
      { existingCommentId: target.environment.githubCommentId ?? undefined },
    );
    if (deploymentId !== target.environment.githubDeploymentId || comment.id !== target.environment.githubCommentId) {
      await ctx.db.update(environments).set({ githubDeploymentId: deploymentId, githubCommentId: comment.id }).where(eq(environments.id, target.environment.id));
    }
  } catch (error) {
    ctx.logger.warn("could not report to GitHub", { environment_id: target.environment.id, state, error: error instanceof Error ? { name: error.name, message: error.message } : {} });
  }
}

/**
 * Reports a run that was just started and scheduled: `failure` with the plan's error when it could not start;
 * otherwise `in_progress` with `building`'s text, unless one of its builds already failed to provision while it was
 * scheduled (that failure is on GitHub, and "building" must not follow it).
 */
export async function reportRunStarted(
  ctx: PipelineContext,
  target: ReportTarget,
  runId: string,
  plan: RunPlan,
  scheduled: { failedRuns: string[] },
  building: (plan: Extract<RunPlan, { ok: true }>) => string,
): Promise<void> {
  if (!plan.ok) await reportToGitHub(ctx, target, "failure", { message: "The preview could not start:", detail: plan.error, runId });
  else if (!scheduled.failedRuns.includes(runId)) await reportToGitHub(ctx, target, "in_progress", { message: building(plan), runId });
}
