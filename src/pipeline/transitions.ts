import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { agentConnections, buildJobs, environments, projects, workflowRuns, type DeployedService } from "../db/schema.ts";
import { snapshotStatement, type SnapshotRow } from "../preview/snapshot.ts";
import { lockTeam, waitingWorkStatement } from "./quotas.ts";
import type { SupersededJob } from "./runs.ts";

/**
 * The pipeline's state changes after the first step, each one batch of conditional updates: applying the same
 * message twice changes nothing the second time, and exactly one caller wins every transition.
 */

const activeJobStatuses = sql`('queued', 'provisioning', 'running')`;
const liveStatuses = sql`('pending', 'building', 'deploying', 'ready', 'failed')`;

export interface JobOutcome {
  teamId: string;
  environmentId: string;
  runId: string;
  job: SupersededJob & { status: string; name: string };
  /** The run's last build completed just now: deploy it (true for exactly one caller). */
  readyToDeploy: boolean;
  /** This job failed the run just now (true for exactly one caller). */
  runFailed: boolean;
  /** Sibling jobs cancelled because the run failed just now: their builders must go. */
  cancelledSiblings: SupersededJob[];
  /** The environment's preview snapshot after the change, read in the same round trip (publishSnapshots). */
  snapshots: SnapshotRow[];
  /** The team has work waiting for room (the finished job freed a build slot): schedule it. */
  teamHasWaitingWork: boolean;
}

/** After a build job reached a final state: fail the run if it failed, or fan in when it was the last one. */
export async function settleBuildJob(db: Db, jobId: string): Promise<JobOutcome | null> {
  const run = sql`(SELECT workflow_run_id FROM ${buildJobs} WHERE id = ${jobId})`;
  const environment = sql`(SELECT environment_id FROM ${workflowRuns} WHERE id = ${run})`;
  const team = teamOfEnvironment(environment);
  const [, ...results] = await db.batch([
    lockTeam(db, team),
    db.execute(sql`
      UPDATE ${workflowRuns} SET status = 'failed', result = 'failure', completed_at = now(),
             duration_seconds = extract(epoch FROM now() - coalesce(started_at, created_at))::int,
             error_message = (SELECT 'build ' || name || ' failed' || coalesce(': ' || error_message, '') FROM ${buildJobs} WHERE id = ${jobId})
       WHERE id = ${run} AND status IN ('pending', 'building')
         AND EXISTS (SELECT 1 FROM ${buildJobs} WHERE id = ${jobId} AND status = 'failed')
      RETURNING id`),
    db.execute<SupersededJob>(sql`
      UPDATE ${buildJobs} SET status = 'cancelled', completed_at = now(), error_message = 'another build of the run failed'
       WHERE workflow_run_id = ${run} AND status IN ${activeJobStatuses}
         AND EXISTS (SELECT 1 FROM ${workflowRuns} WHERE id = ${run} AND status = 'failed')
      RETURNING id, vm_id, agent_id, cloud_provider_id`),
    db.execute(sql`
      UPDATE ${environments} SET status = 'failed'
       WHERE id = ${environment} AND status = 'building'
         AND EXISTS (SELECT 1 FROM ${workflowRuns} WHERE id = ${run} AND status = 'failed')`),
    db.execute<{ id: string }>(sql`
      UPDATE ${workflowRuns} SET status = 'deploying'
       WHERE id = ${run} AND status = 'building'
         AND NOT EXISTS (SELECT 1 FROM ${buildJobs} WHERE workflow_run_id = ${run} AND status <> 'completed')
      RETURNING id`),
    db.execute(sql`
      UPDATE ${environments} SET status = 'deploying'
       WHERE id = ${environment} AND status = 'building'
         AND EXISTS (SELECT 1 FROM ${workflowRuns} WHERE id = ${run} AND status = 'deploying')`),
    db.execute<{ id: string; name: string; status: string; vm_id: string | null; agent_id: string | null; cloud_provider_id: string | null; run_id: string; environment_id: string; team_id: string }>(sql`
      SELECT j.id, j.name, j.status, j.vm_id, j.agent_id, j.cloud_provider_id, r.id AS run_id, r.environment_id, p.team_id
        FROM ${buildJobs} j JOIN ${workflowRuns} r ON r.id = j.workflow_run_id
        JOIN ${environments} e ON e.id = r.environment_id JOIN ${projects} p ON p.id = e.project_id
       WHERE j.id = ${jobId}`),
    snapshotStatement(db, sql`e.id = ${environment}`),
    waitingWorkStatement(db, team),
  ]);
  const row = (results[5] as { rows: { id: string; name: string; status: string; vm_id: string | null; agent_id: string | null; cloud_provider_id: string | null; run_id: string; environment_id: string; team_id: string }[] }).rows[0];
  if (!row) return null;
  return {
    teamId: row.team_id,
    environmentId: row.environment_id,
    runId: row.run_id,
    job: { id: row.id, name: row.name, status: row.status, vm_id: row.vm_id, agent_id: row.agent_id, cloud_provider_id: row.cloud_provider_id },
    readyToDeploy: (results[3] as { rows: unknown[] }).rows.length > 0,
    runFailed: (results[0] as { rows: unknown[] }).rows.length > 0,
    cancelledSiblings: (results[1] as { rows: SupersededJob[] }).rows,
    snapshots: results[6].rows,
    teamHasWaitingWork: results[7].rows[0]?.waiting === true,
  };
}

/**
 * The preview agent reported on a deploy: healthy makes the run completed and the environment ready. Reads, in the
 * same round trip, the environment's preview snapshot and whether the team has work waiting for room (a failed
 * deploy of an environment without a VM frees its place).
 */
export async function settleDeploy(
  db: Db,
  runId: string,
  healthy: boolean,
  error: string | null,
  services: DeployedService[] | null = null,
): Promise<{ changed: boolean; snapshots: SnapshotRow[]; teamHasWaitingWork: boolean }> {
  const environment = sql`(SELECT environment_id FROM ${workflowRuns} WHERE id = ${runId})`;
  const team = teamOfEnvironment(environment);
  const [, run, , snapshots, waiting] = await db.batch([
    lockTeam(db, team),
    db.execute<{ id: string }>(sql`
      UPDATE ${workflowRuns}
         SET status = ${healthy ? "completed" : "failed"}, result = ${healthy ? "success" : "failure"}, completed_at = now(),
             duration_seconds = extract(epoch FROM now() - coalesce(started_at, created_at))::int, error_message = ${error},
             deploy_services = ${services === null ? null : JSON.stringify(services)}::jsonb
       WHERE id = ${runId} AND status = 'deploying'
      RETURNING id`),
    db.execute(sql`
      UPDATE ${environments} SET status = ${healthy ? "ready" : "failed"}, deployed_at = CASE WHEN ${healthy} THEN now() ELSE deployed_at END,
             -- The VM's agent reported: the VM runs, whatever state the cloud answered when it was created.
             vm_status = CASE WHEN vm_status IN ('pending', 'provisioning') THEN 'running' ELSE vm_status END
       WHERE id = ${environment} AND status = 'deploying'
         AND EXISTS (SELECT 1 FROM ${workflowRuns} WHERE id = ${runId} AND status = ${healthy ? "completed" : "failed"})`),
    snapshotStatement(db, sql`e.id = ${environment}`),
    waitingWorkStatement(db, team),
  ]);
  return { changed: run.rows.length > 0, snapshots: snapshots.rows, teamHasWaitingWork: waiting.rows[0]?.waiting === true };
}

function teamOfEnvironment(environment: SQL): SQL {
  return sql`(SELECT p.team_id FROM ${projects} p JOIN ${environments} e ON e.project_id = p.id WHERE e.id = ${environment})`;
}

export interface TeardownTarget {
  environment: { id: string; vm_id: string | null; cloud_provider_id: string | null; region: string; github_deployment_id: number | null; project_id: string };
  jobs: SupersededJob[];
  agentIds: string[];
}

/**
 * Ends a live environment (`terminated` for a closed PR or a user's delete, `reaped` by the reaper): cancels its
 * runs and jobs and returns every VM and agent that must go. Null when it was not live (already torn down).
 * `gate` adds a condition (e.g. the closing webhook is the PR's latest event).
 */
export async function endEnvironment(
  db: Db,
  where: { environmentId: string } | { projectId: string; prNumber: number },
  status: "terminated" | "reaped",
  gate = sql`true`,
  leading: Parameters<Db["batch"]>[0][number][] = [],
): Promise<TeardownTarget | null> {
  const id =
    "environmentId" in where
      ? sql`${where.environmentId}`
      : sql`(SELECT id FROM ${environments} WHERE project_id = ${where.projectId} AND pr_number = ${where.prNumber} AND status IN ${liveStatuses})`;
  const statements = [
    ...leading,
    db.execute<{ id: string }>(sql`
      WITH cancelled AS (
        UPDATE ${workflowRuns} SET status = 'cancelled', result = 'cancelled', completed_at = now(), error_message = 'environment ended'
         WHERE environment_id = ${id} AND status IN ('pending', 'building', 'deploying', 'testing') AND ${gate}
        RETURNING id)
      SELECT id FROM cancelled`),
    db.execute<SupersededJob>(sql`
      UPDATE ${buildJobs} SET status = 'cancelled', completed_at = now(), error_message = 'environment ended'
       WHERE workflow_run_id IN (SELECT id FROM ${workflowRuns} WHERE environment_id = ${id}) AND status IN ${activeJobStatuses} AND ${gate}
      RETURNING id, vm_id, agent_id, cloud_provider_id`),
    db.execute<TeardownTarget["environment"]>(sql`
      UPDATE ${environments} SET status = ${status}, terminated_at = now()
       WHERE id = ${id} AND status IN ${liveStatuses} AND ${gate}
      RETURNING id, vm_id, cloud_provider_id, region, github_deployment_id, project_id`),
    db.execute<{ agent_id: string }>(sql`
      SELECT agent_id FROM ${agentConnections}
       WHERE environment_id = ${id} OR build_job_id IN (SELECT j.id FROM ${buildJobs} j JOIN ${workflowRuns} r ON r.id = j.workflow_run_id WHERE r.environment_id = ${id})`),
  ];
  const results = await db.batch(statements as unknown as Parameters<Db["batch"]>[0]);
  const offset = leading.length;
  const environment = (results[offset + 2] as { rows: TeardownTarget["environment"][] }).rows[0];
  if (!environment) return null;
  return {
    environment,
    jobs: (results[offset + 1] as { rows: SupersededJob[] }).rows,
    agentIds: (results[offset + 3] as { rows: { agent_id: string }[] }).rows.map((r) => r.agent_id),
  };
}
