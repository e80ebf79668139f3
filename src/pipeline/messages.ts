import * as z from "zod";
import { buildJobFinishedEvent, environmentDeployReportedEvent } from "../agents/job-events.ts";

/**
 * Every message on the JOBS queue, validated before it is acted on. Each handler is idempotent: queues deliver
 * at least once, and a redelivered message must change nothing.
 */

export const pullRequestMessage = z.object({
  type: z.literal("github.pull_request"),
  delivery_id: z.string(),
  /** The App installation the webhook came through: only projects of the team that owns it are reached. */
  installation_id: z.number().int().positive(),
  repository: z.string(),
  action: z.enum(["opened", "reopened", "synchronize", "closed", "edited"]),
  pr_number: z.number().int().positive(),
  head_sha: z.string(),
  head_ref: z.string(),
  /** Absent in messages queued before titles were carried. */
  title: z.string().nullable().default(null),
  is_fork: z.boolean(),
  updated_at: z.string(),
  sender: z.string().nullable(),
});

/** A run asked for by a user (rebuild) or by a secret change, for an environment that already exists. */
export const runRequestedMessage = z.object({
  type: z.literal("run.requested"),
  environment_id: z.string(),
  trigger: z.enum(["manual_rebuild", "secret_updated"]),
  triggered_by: z.string().nullable(),
  dedupe_key: z.string(),
});

/** A preview asked for through the API (not a webhook): a pull request's branch at a given commit. */
export const previewRequestedMessage = z.object({
  type: z.literal("preview.requested"),
  project_id: z.string(),
  pr_number: z.number().int().positive(),
  branch: z.string(),
  commit_hash: z.string(),
  triggered_by: z.string().nullable(),
  dedupe_key: z.string(),
  /** The ids the API already answered with (optional: messages queued before they existed have none). */
  run_id: z.string().optional(),
  environment_id: z.string().optional(),
});

export const provisionBuildMessage = z.object({ type: z.literal("build_job.provision"), job_id: z.string() });
export const deployMessage = z.object({ type: z.literal("environment.deploy"), run_id: z.string() });
export const teardownMessage = z.object({
  type: z.literal("environment.teardown"),
  environment_id: z.string(),
  reason: z.enum(["deleted", "pr_closed", "reaped"]),
});
export const terminateVmMessage = z.object({
  type: z.literal("vm.terminate"),
  cloud_provider_id: z.string(),
  instance_id: z.string(),
  region: z.string().nullable(),
});
export const scheduleMessage = z.object({ type: z.literal("team.schedule"), team_id: z.string() });
/** An agent whose revocation failed: retried with the queue's backoff until its token is refused. */
export const retireAgentMessage = z.object({ type: z.literal("agent.retire"), agent_id: z.string(), reason: z.string() });

export const pipelineMessage = z.discriminatedUnion("type", [
  pullRequestMessage,
  runRequestedMessage,
  previewRequestedMessage,
  provisionBuildMessage,
  buildJobFinishedEvent,
  deployMessage,
  environmentDeployReportedEvent,
  teardownMessage,
  terminateVmMessage,
  scheduleMessage,
  retireAgentMessage,
]);

export type PipelineMessage = z.infer<typeof pipelineMessage>;
export type PullRequestMessage = z.infer<typeof pullRequestMessage>;
