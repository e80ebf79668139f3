import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { buildJobs, environments, projects, teams, workflowRuns } from "../db/schema.ts";

/**
 * Team quotas are enforced by queuing, never by failing: environments wait in `pending` and build jobs in
 * `queued` until the team has room. Each function locks the team row first, so concurrent schedulers of one team
 * take turns and never overshoot.
 */

/** Admits waiting environments (oldest first) up to max_concurrent_environments; their runs start building. */
export async function admitEnvironments(db: Db, teamId: string): Promise<string[]> {
  const [admitted] = await db.batch([admitStatement(db, teamId), startAdmittedRuns(db, teamId)]);
  return admitted.rows.map((r) => r.id);
}

/** Moves queued build jobs of building runs to `provisioning`, oldest first, up to max_concurrent_builds. */
export async function claimBuildSlots(db: Db, teamId: string): Promise<string[]> {
  return (await claimStatement(db, teamId)).rows.map((r) => r.id);
}

/** admitEnvironments then claimBuildSlots in one round trip (one transaction: the claim sees the runs just started). */
export async function admitAndClaim(db: Db, teamId: string): Promise<{ admitted: string[]; claimed: string[] }> {
  const [admitted, , claimed] = await db.batch([admitStatement(db, teamId), startAdmittedRuns(db, teamId), claimStatement(db, teamId)]);
  return { admitted: admitted.rows.map((r) => r.id), claimed: claimed.rows.map((r) => r.id) };
}

function admitStatement(db: Db, teamId: string) {
  return db.execute<{ id: string }>(sql`
      WITH team AS (SELECT max_concurrent_environments AS quota FROM ${teams} WHERE id = ${teamId} FOR UPDATE),
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
    WITH team AS (SELECT max_concurrent_builds AS quota FROM ${teams} WHERE id = ${teamId} FOR UPDATE),
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
