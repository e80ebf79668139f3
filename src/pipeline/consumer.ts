import { sql } from "drizzle-orm";
import { isGitHubError } from "./github-app.ts";
import { isProviderError } from "../providers/errors.ts";
import { Logger } from "../lib/logger.ts";
import { pipelineContext, type PipelineContext } from "./context.ts";
import { pipelineMessage, type PipelineMessage } from "./messages.ts";
import { failJob, handleBuildFinished, handleProvisionBuild } from "./steps/build.ts";
import { handleDeploy, handleDeployReported } from "./steps/deploy.ts";
import { handlePullRequest } from "./steps/pull-request.ts";
import { handlePreviewRequested, handleRunRequested } from "./steps/rebuild.ts";
import { handleTeardown, handleTerminateVm } from "./steps/teardown.ts";
import { handleRetireAgent, scheduleTeam } from "./effects.ts";
import { publishPreviewHostsWhere } from "../preview/snapshot.ts";
import { settleDeploy } from "./transitions.ts";

const MAX_RETRY_DELAY_SECONDS = 300;

async function dispatch(ctx: PipelineContext, message: PipelineMessage): Promise<void> {
  switch (message.type) {
    case "github.pull_request":
      return handlePullRequest(ctx, message);
    case "run.requested":
      return handleRunRequested(ctx, message);
    case "preview.requested":
      return handlePreviewRequested(ctx, message);
    case "build_job.provision":
      await handleProvisionBuild(ctx, message.job_id);
      return;
    case "build_job.finished":
      return handleBuildFinished(ctx, message.job_id);
    case "environment.deploy":
      return handleDeploy(ctx, message.run_id);
    case "environment.deploy_reported":
      return handleDeployReported(ctx, message);
    case "environment.teardown":
      return handleTeardown(ctx, message.environment_id, message.reason);
    case "vm.terminate":
      return handleTerminateVm(ctx, message);
    case "team.schedule":
      await scheduleTeam(ctx, message.team_id);
      return;
    case "agent.retire":
      return handleRetireAgent(ctx, message);
  }
}

/** A message that used up its retries: whatever it was doing is marked failed, with the reason, so nothing waits forever. */
async function deadLetter(ctx: PipelineContext, message: PipelineMessage): Promise<void> {
  const reason = "gave up after repeated transient errors (cloud or GitHub unavailable)";
  switch (message.type) {
    case "build_job.provision":
      await failJob(ctx, message.job_id, `could not provision a builder VM: ${reason}`);
      return;
    case "environment.deploy":
      await settleDeploy(ctx.db, message.run_id, false, `could not deploy: ${reason}`);
      await publishPreviewHostsWhere(ctx.env, ctx.db, sql`e.id = (SELECT environment_id FROM workflow_runs WHERE id = ${message.run_id})`, ctx.logger);
      return;
    case "vm.terminate":
      ctx.logger.error("a VM could not be terminated; the reaper's orphan scan will try again", { instance_id: message.instance_id, cloud_provider_id: message.cloud_provider_id });
      return;
    case "agent.retire":
      ctx.logger.error("an agent could not be revoked; the reaper will try again", { agent_id: message.agent_id });
      return;
    default:
      ctx.logger.error("a pipeline message was dead-lettered", { type: message.type });
  }
}

function retryDelaySeconds(error: unknown, attempts: number): number {
  const suggested = (isProviderError(error) || isGitHubError(error)) && error.retryAfterSeconds ? error.retryAfterSeconds : 0;
  return Math.min(MAX_RETRY_DELAY_SECONDS, Math.max(suggested, 2 ** Math.min(attempts, 8)));
}

/**
 * The JOBS queue and its dead-letter queue. A malformed message is logged and dropped; a failing step is retried with
 * backoff. A batch's messages are handled at once, not one after another (a burst of pull requests is many
 * database round trips each): every step is already safe beside another, since the queue may run several
 * consumers at a time, and the team quotas lock the team's row.
 */
export async function consumePipelineBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const logger = new Logger("info", { queue: batch.queue });
  const ctx = await pipelineContext(env, logger);
  const deadLetters = batch.queue.endsWith("-dlq");
  await Promise.all(batch.messages.map(async (message) => {
    const parsed = pipelineMessage.safeParse(message.body);
    if (!parsed.success) {
      logger.error("queue message not understood; dropped", { message_id: message.id, issues: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) });
      message.ack();
      return;
    }
    try {
      await (deadLetters ? deadLetter(ctx, parsed.data) : dispatch(ctx, parsed.data));
      message.ack();
    } catch (error) {
      const delaySeconds = retryDelaySeconds(error, message.attempts);
      logger.warn("pipeline step failed; retrying", {
        type: parsed.data.type,
        attempts: message.attempts,
        delay_seconds: delaySeconds,
        error: error instanceof Error ? { name: error.name, message: error.message } : {},
      });
      message.retry({ delaySeconds });
    }
  }));
}
