import { and, eq, inArray } from "drizzle-orm";
import { agentStub, issueAgentToken } from "../../agents/issue-token.ts";
import { isCommandTooLarge } from "../../agents/protocol.ts";
import { buildJobs } from "../../db/schema.ts";
import { isProviderError } from "../../providers/errors.ts";
import { bootAgentVm } from "../agent-vms.ts";
import type { PipelineContext } from "../context.ts";
import { retireAgents, retireBuilders, scheduleTeam, terminateVms } from "../effects.ts";
import { isGitHubError } from "../github-app.ts";
import { reportToGitHub } from "../github-report.ts";
import type { RepositoryAccess } from "../../installations/access.ts";
import { loadEnvironment, loadJob, repoOf } from "../records.ts";
import type { StagelyConfig } from "../stagely-yaml.ts";
import { publishSnapshots } from "../../preview/snapshot.ts";
import { settleBuildJob } from "../transitions.ts";
import { ensurePreviewVm } from "../preview-vm.ts";
import { noteInJobLog, skippedPlatformsNote } from "../build-mode.ts";
import { registryLogin } from "../../registries/resolve.ts";

/**
 * `build_job.provision`: a job that holds a build slot gets its machine. Default mode (no registry): the BUILD goes
 * to the environment's preview VM, created now if it has none. Registry mode: a builder VM of its own, whose BUILD is
 * queued in its agent's Durable Object first, so it is waiting when the agent dials in. Cloud errors that retrying
 * cannot fix fail the job, and return its run's id (that failure is settled and on GitHub); others throw, and the
 * queue retries with backoff.
 */
export async function handleProvisionBuild(ctx: PipelineContext, jobId: string): Promise<string | null> {
  const loaded = await loadJob(ctx.db, jobId);
  if (!loaded || loaded.job.status !== "provisioning" || loaded.job.vmId) return null;
  const { job, run, environment, project, provider, registry, access } = loaded;
  const fail = async (reason: string) => ((await failJob(ctx, jobId, reason)) ? run.id : null);
  if (!provider) return fail("the job's cloud provider was removed");
  const spec = (run.config as StagelyConfig | null)?.builds.flatMap((b) => b.jobs).find((j) => j.name === job.name);
  const build = spec?.build ?? job.name.replace(/_(amd64|arm64|multi)$/, "");
  let login: Awaited<ReturnType<typeof registryLogin>> | null = null;
  if (registry) {
    try {
      login = await registryLogin(ctx, registry, provider);
    } catch (error) {
      if (isProviderError(error) && !error.retryable) {
        return fail(`could not log in to the project's ${registry.kind} registry: ${error.message}`);
      }
      throw error;
    }
  }
  // Default mode: no registry, so the image is built where it runs, on the environment's preview VM (its layer
  // cache warm from earlier pushes), and the artifact is the local image id the deploy uses. The VM comes first so a
  // job retried while another creates it mints no clone token it cannot use.
  let previewAgentId: string | null = null;
  if (!login) {
    try {
      previewAgentId = await ensurePreviewVm(ctx, environment, provider, loaded.previewAgentId);
    } catch (error) {
      if (isProviderError(error) && !error.retryable) {
        return fail(`could not create the preview VM: ${error.message}`);
      }
      throw error;
    }
    if (!previewAgentId) {
      return fail("the environment ended before its build could start");
    }
  }
  // Access as read with the job, a VM creation ago at most: no later than a disconnect just after minting would be
  // (the token lives an hour either way), and it spares a round trip.
  const cloneToken = await mintCloneToken(ctx, access);
  if (!cloneToken.ok) return fail(`could not get a token to clone the repository: ${cloneToken.reason}`);
  const arch = job.architecture === "arm64" ? "arm64" : "amd64";
  const image = `${repoOf(project.repoUrl)}/${build}:${run.commitHash.slice(0, 12)}-${arch}`.toLowerCase();
  const command = {
    type: "BUILD" as const,
    job_id: jobId,
    context: {
      // GitHub's web host serves clones (GITHUB_WEB_URL: github.com, or GitHub Enterprise / a local git server).
      repo_url: `${ctx.config.GITHUB_WEB_URL}/${repoOf(project.repoUrl)}.git`,
      commit_hash: run.commitHash,
      branch: environment.branchName,
      clone_token: cloneToken.token,
    },
    build_config: {
      context_path: job.contextPath,
      dockerfile: job.dockerfilePath,
      // Default mode: a local tag on the preview VM; registry mode: where the builder pushes it.
      target_image: login ? `${login.address}/${image}`.toLowerCase() : image,
      platform: `linux/${arch}`,
      build_args: spec?.build_args ?? {},
      cache_from: spec?.cache_from ?? [],
      timeout_seconds: spec?.timeout_seconds,
    },
    registry_auth: login?.auth ?? null,
  };

  if (previewAgentId) {
    const buildSpec = (run.config as StagelyConfig | null)?.builds.find((b) => b.name === build);
    const note = buildSpec && spec ? skippedPlatformsNote(buildSpec, spec) : null;
    if (note) await noteInJobLog(ctx.db, jobId, note);
    try {
      await agentStub(ctx.env, previewAgentId).sendCommand(command, { unlessKnown: true });
    } catch (error) {
      if (!isCommandTooLarge(error)) throw error;
      return fail(`the build cannot be sent to the preview VM: ${error.message}`);
    }
    return null;
  }

  // Registry mode: a builder VM per build × platform, which pushes to the project's registry.
  if (job.agentId) await retireAgents(ctx, [job.agentId], "replaced by a new provisioning attempt");
  const { agentId, token } = await issueAgentToken(ctx.env, ctx.db, { role: "builder", buildJobId: jobId });
  try {
    await agentStub(ctx.env, agentId).sendCommand(command);
  } catch (error) {
    if (!isCommandTooLarge(error)) throw error;
    // Permanent: the job fails now, saying why, instead of being retried (and no VM is made for it).
    return fail(`the build cannot be sent to its builder: ${error.message}`);
  }

  try {
    const instance = await bootAgentVm(
      ctx,
      provider,
      { size: job.machineSize, region: provider.region, tags: { job_id: jobId, environment_id: environment.id } },
      { agentId, token, role: "builder", jobId, architecture: arch },
    );
    const [recorded] = await ctx.db
      .update(buildJobs)
      .set({ vmId: instance.id })
      .where(and(eq(buildJobs.id, jobId), eq(buildJobs.status, "provisioning")))
      .returning({ id: buildJobs.id });
    // Cancelled while the VM was being made: it goes at once.
    if (!recorded) await terminateVms(ctx, [{ instanceId: instance.id, cloudProviderId: provider.id, region: provider.region }]);
    return null;
  } catch (error) {
    if (isProviderError(error) && !error.retryable) {
      return fail(`could not create the builder VM: ${error.message}`);
    }
    throw error;
  }
}

/**
 * A read-only token for the project's one repository, minted by the installation its team owns. Null without a
 * GitHub App on this server; a reason when the installation no longer serves the project. Transient GitHub errors throw.
 */
async function mintCloneToken(ctx: PipelineContext, access: RepositoryAccess): Promise<{ ok: true; token: string | null } | { ok: false; reason: string }> {
  if (!ctx.github) return { ok: true, token: null };
  if (!access.ok) return access;
  try {
    return { ok: true, token: (await ctx.github.cloneToken(access.repo)).token };
  } catch (error) {
    if (isGitHubError(error) && !error.retryable) return { ok: false, reason: error.message };
    throw error;
  }
}

/** Fails a job that cannot start or finish (no VM, stuck), then settles it like any finished job. */
export async function failJob(ctx: PipelineContext, jobId: string, reason: string): Promise<boolean> {
  const [failed] = await ctx.db
    .update(buildJobs)
    .set({ status: "failed", completedAt: new Date(), errorMessage: reason })
    .where(and(eq(buildJobs.id, jobId), inArray(buildJobs.status, ["provisioning", "running"])))
    .returning({ id: buildJobs.id });
  if (failed) await handleBuildFinished(ctx, jobId);
  return Boolean(failed);
}

/** `build_job.finished`: the builder goes; the run fails or fans in to its deploy; the team's queue moves on. */
export async function handleBuildFinished(ctx: PipelineContext, jobId: string): Promise<void> {
  const outcome = await settleBuildJob(ctx.db, jobId);
  if (!outcome) return;
  await publishSnapshots(ctx.env, outcome.snapshots, ctx.logger);
  await retireBuilders(ctx, [outcome.job, ...outcome.cancelledSiblings], "the build is over");
  if (outcome.readyToDeploy) await ctx.send([{ type: "environment.deploy", run_id: outcome.runId }]);
  if (outcome.runFailed) {
    const loaded = await loadEnvironment(ctx.db, outcome.environmentId);
    if (loaded) {
      const logs = `${ctx.config.PUBLIC_URL}/v1/jobs/${jobId}/logs`;
      await reportToGitHub(ctx, loaded, "failure", { message: `A build failed. Its logs: ${logs}`, detail: `build ${outcome.job.name} failed`, runId: outcome.runId });
    }
  }
  if (outcome.teamHasWaitingWork) await scheduleTeam(ctx, outcome.teamId);
}
