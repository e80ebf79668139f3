import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { buildJobs, environments, projects, teams, workflowRuns } from "../db/schema.ts";
import { snapshotStatement, type SnapshotRow } from "../preview/snapshot.ts";

/**
 * Team quotas are enforced by queuing, never by failing: environments wait in `pending` and build jobs in
 * `queued` until the team has room. Each function is one batch (one transaction) whose first statement locks the
 * team row, so concurrent schedulers of one team take turns; the statements after it count what is occupied with a
 * snapshot taken once the lock is held (READ COMMITTED takes one per statement), so they see what the previous
 * scheduler claimed and never overshoot.
 */

/**
 * Admits waiting environments (oldest first) up to max_concurrent_environments, starting their runs, then moves
 * queued build jobs of building runs to `provisioning` (oldest first) up to max_concurrent_builds: one round trip
 * (one transaction: the claim sees the runs just started), reading the preview snapshots of the environments
 * matching `publish` after both.
 */
export async function admitAndClaim(db: Db, teamId: string, publish: SQL | null = null): Promise<{ admitted: string[]; claimed: string[]; snapshots: SnapshotRow[] }> {
  const scheduling = [lockTeam(db, teamId), admitStatement(db, teamId), startAdmittedRuns(db, teamId), claimStatement(db, teamId)] as const;
  if (!publish) {
    const [, admitted, , claimed] = await db.batch(scheduling);
    return { admitted: admitted.rows.map((r) => r.id), claimed: claimed.rows.map((r) => r.id), snapshots: [] };
  }
  const [, admitted, , claimed, snapshots] = await db.batch([...scheduling, snapshotStatement(db, publish)]);
  return { admitted: admitted.rows.map((r) => r.id), claimed: claimed.rows.map((r) => r.id), snapshots: snapshots.rows };
}

/**
 * Whether the team has work waiting for room (a pending environment, or a queued job of a building run), as a
 * statement for the batch that frees room, after its `lockTeam`: when it says no, nothing needs scheduling. Work
 * queued later is scheduled by its own writer, whose scheduling waits for that lock and so sees the room freed.
 */
export function waitingWorkStatement(db: Db, teamId: SQL) {
  return db.execute<{ waiting: boolean }>(sql`SELECT ${hasWaitingWork(teamId)} AS waiting`);
}

/** Teams with waiting work (the reaper schedules them, in case a scheduling after freed room was lost). */
export async function teamsWithWaitingWork(db: Db): Promise<string[]> {
  const { rows } = await db.execute<{ id: string }>(sql`SELECT t.id FROM ${teams} t WHERE t.deleted_at IS NULL AND ${hasWaitingWork(sql`t.id`)}`);
  return rows.map((r) => r.id);
}

function hasWaitingWork(teamId: SQL): SQL {
  return sql`(EXISTS (SELECT 1 FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id
                       WHERE p.team_id = ${teamId} AND e.status = 'pending')
           OR EXISTS (SELECT 1 FROM ${buildJobs} j JOIN ${workflowRuns} r ON r.id = j.workflow_run_id
                        JOIN ${environments} e ON e.id = r.environment_id JOIN ${projects} p ON p.id = e.project_id
                       WHERE p.team_id = ${teamId} AND j.status = 'queued' AND r.status = 'building'))`;
}

/**
 * Locks the team row for the rest of the batch (a statement of its own: the statements after it take their snapshots
 * once it is held). Every batch that frees room or fills it starts with it, so those batches take turns.
 */
export function lockTeam(db: Db, teamId: string | SQL) {
  return db.execute(sql`SELECT id FROM ${teams} WHERE id = ${teamId} FOR UPDATE`);
}

function admitStatement(db: Db, teamId: string) {
  return db.execute<{ id: string }>(sql`
      WITH team AS (SELECT max_concurrent_environments AS quota FROM ${teams} WHERE id = ${teamId}),
      occupied AS (
        SELECT count(*) AS n FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id
         WHERE p.team_id = ${teamId} AND (e.status IN ('building', 'deploying', 'ready') OR (e.status = 'failed' AND e.vm_id IS NOT NULL))),
      chosen AS (
        SELECT e.id FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id
         WHERE p.team_id = ${teamId} AND e.status = 'pending'
         ORDER BY e.created_at, e.id
         LIMIT GREATEST(0, (SELECT quota FROM team) - (SELECT n FROM occupied))
         FOR UPDATE OF e SKIP LOCKED)
      UPDATE ${environments} SET status = 'building' WHERE id IN (SELECT id FROM chosen) RETURNING id`);
}

function startAdmittedRuns(db: Db, teamId: string) {
  return db.execute(sql`
      UPDATE ${workflowRuns} r SET status = 'building', started_at = now()
        FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id
       WHERE r.environment_id = e.id AND p.team_id = ${teamId} AND e.status = 'building' AND r.status = 'pending'`);
}

function claimStatement(db: Db, teamId: string) {
  return db.execute<{ id: string }>(sql`
    WITH team AS (SELECT max_concurrent_builds AS quota FROM ${teams} WHERE id = ${teamId}),
    team_jobs AS (
      SELECT j.id, j.status, j.queued_at, r.status AS run_status FROM ${buildJobs} j
        JOIN ${workflowRuns} r ON r.id = j.workflow_run_id
        JOIN ${environments} e ON e.id = r.environment_id
        JOIN ${projects} p ON p.id = e.project_id
       WHERE p.team_id = ${teamId} AND j.status IN ('queued', 'provisioning', 'running')),
    chosen AS (
      SELECT j.id FROM ${buildJobs} j
       WHERE j.id IN (SELECT id FROM team_jobs WHERE status = 'queued' AND run_status = 'building')
       ORDER BY j.queued_at, j.id
       LIMIT GREATEST(0, (SELECT quota FROM team) - (SELECT count(*) FROM team_jobs WHERE status <> 'queued'))
       FOR UPDATE SKIP LOCKED)
    UPDATE ${buildJobs} SET status = 'provisioning' WHERE id IN (SELECT id FROM chosen) RETURNING id`);
}
