import { sql } from "drizzle-orm";
import * as z from "zod";
import { environments, pullRequests, type buildJobs, type workflowRuns } from "../db/schema.ts";
import { idOf, iso, timestamp } from "../lib/schemas.ts";
import { previewUrl } from "../pipeline/records.ts";

export const environmentParams = z.object({ id: idOf("env") });
export const runParams = z.object({ id: idOf("run") });
export const jobParams = z.object({ id: idOf("job") });

export const environmentSchema = z.object({
  id: z.string(),
  project_id: z.string(),
  pr_number: z.number().int(),
  pr_title: z.string().nullable().describe("the pull request's title as of its latest webhook (null when GitHub never sent one, e.g. a preview created through the API)"),
  branch_name: z.string(),
  commit_hash: z.string(),
  status: z.string(),
  url: z.string().describe("where the preview is served once ready"),
  size: z.string(),
  region: z.string(),
  cloud_provider_id: z.string().nullable(),
  vm_status: z.string(),
  error_message: z.string().nullable().describe("why the environment failed (its latest run's reason); null unless status is failed"),
  is_fork: z.boolean(),
  deployed_at: timestamp.nullable(),
  last_heartbeat_at: timestamp.nullable(),
  last_request_at: timestamp.nullable().describe("when a visitor last reached the preview URL (recorded at most once a minute)"),
  terminated_at: timestamp.nullable(),
  created_at: timestamp,
  updated_at: timestamp,
});

/** The title of an environment's pull request, as a select field next to `environments` (no extra round trip). */
export const prTitleOf = sql<string | null>`(SELECT ${pullRequests.title} FROM ${pullRequests}
  WHERE ${pullRequests.projectId} = ${environments.projectId} AND ${pullRequests.prNumber} = ${environments.prNumber})`;

/** Select this beside an environment row for its `error_message`: its latest run's reason, when it failed. */
export const environmentFailure = sql<string | null>`CASE WHEN ${environments.status} = 'failed' THEN
  (SELECT error_message FROM workflow_runs WHERE environment_id = ${environments.id} ORDER BY created_at DESC, id DESC LIMIT 1) END`;

export function toApiEnvironment(
  row: typeof environments.$inferSelect,
  prTitle: string | null,
  settings: Parameters<typeof previewUrl>[1],
  failure: string | null,
): z.infer<typeof environmentSchema> {
  return {
    id: row.id,
    project_id: row.projectId,
    pr_number: row.prNumber,
    pr_title: prTitle,
    branch_name: row.branchName,
    commit_hash: row.commitHash,
    status: row.status,
    url: previewUrl(row.subdomainHash, settings),
    size: row.size,
    region: row.region,
    cloud_provider_id: row.cloudProviderId,
    vm_status: row.vmStatus,
    error_message: row.status === "failed" ? (failure ?? "the environment failed; its runs (GET /v1/environments/:id/runs) may say more") : null,
    is_fork: row.isFork,
    deployed_at: iso(row.deployedAt),
    last_heartbeat_at: iso(row.lastHeartbeatAt),
    last_request_at: iso(row.lastRequestAt),
    terminated_at: iso(row.terminatedAt),
    created_at: iso(row.createdAt)!,
    updated_at: iso(row.updatedAt)!,
  };
}

export const jobSchema = z.object({
  id: z.string(),
  run_id: z.string(),
  name: z.string(),
  architecture: z.string(),
  status: z.string(),
  machine_size: z.string(),
  context_path: z.string(),
  dockerfile_path: z.string(),
  artifact_url: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  error_message: z.string().nullable(),
  queued_at: timestamp,
  started_at: timestamp.nullable(),
  completed_at: timestamp.nullable(),
  duration_seconds: z.number().int().nullable(),
});

export function toApiJob(row: typeof buildJobs.$inferSelect): z.infer<typeof jobSchema> {
  return {
    id: row.id,
    run_id: row.workflowRunId,
    name: row.name,
    architecture: row.architecture,
    status: row.status,
    machine_size: row.machineSize,
    context_path: row.contextPath,
    dockerfile_path: row.dockerfilePath,
    artifact_url: row.artifactUrl,
    exit_code: row.exitCode,
    error_message: row.errorMessage,
    queued_at: iso(row.queuedAt)!,
    started_at: iso(row.startedAt),
    completed_at: iso(row.completedAt),
    duration_seconds: row.durationSeconds,
  };
}

export const runSchema = z.object({
  id: z.string(),
  environment_id: z.string(),
  trigger: z.string(),
  triggered_by: z.string().nullable(),
  commit_hash: z.string(),
  status: z.string(),
  result: z.string().nullable(),
  error_message: z.string().nullable(),
  deploy_services: z
    .array(z.object({ name: z.string(), status: z.string(), health: z.string().nullable(), port: z.number().int().nullable() }))
    .nullable()
    .describe("each service's state as the preview agent reported it when the deploy settled (null before, or when it reported none)"),
  config: z.record(z.string(), z.unknown()).nullable().describe("the parsed stagely.yaml this run used"),
  started_at: timestamp.nullable(),
  completed_at: timestamp.nullable(),
  duration_seconds: z.number().int().nullable(),
  created_at: timestamp,
});

export function toApiRun(row: typeof workflowRuns.$inferSelect): z.infer<typeof runSchema> {
  return {
    id: row.id,
    environment_id: row.environmentId,
    trigger: row.trigger,
    triggered_by: row.triggeredBy,
    commit_hash: row.commitHash,
    status: row.status,
    result: row.result,
    error_message: row.errorMessage,
    deploy_services: row.deployServices ?? null,
    config: row.config ?? null,
    started_at: iso(row.startedAt),
    completed_at: iso(row.completedAt),
    duration_seconds: row.durationSeconds,
    created_at: iso(row.createdAt)!,
  };
}
