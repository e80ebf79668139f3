import { sql } from "drizzle-orm";
import { db } from "./db.ts";

/**
 * Moves a project's pipeline rows back in time (environments, runs, jobs), as if `minutes` had passed, so the
 * reaper's timeouts can be tested without waiting. Triggers are off inside this one transaction only, so
 * updated_at can be moved too.
 */
export async function ageProject(projectId: string, minutes: number): Promise<void> {
  const shift = sql.raw(`interval '${Math.trunc(minutes)} minutes'`);
  await db.batch([
    db.execute(sql`SET LOCAL session_replication_role = replica`),
    db.execute(sql`
      UPDATE environments SET created_at = created_at - ${shift}, updated_at = updated_at - ${shift},
             last_heartbeat_at = last_heartbeat_at - ${shift}
       WHERE project_id = ${projectId}`),
    db.execute(sql`
      UPDATE build_jobs SET queued_at = queued_at - ${shift}, started_at = started_at - ${shift}, updated_at = updated_at - ${shift}
       WHERE workflow_run_id IN (SELECT r.id FROM workflow_runs r JOIN environments e ON e.id = r.environment_id WHERE e.project_id = ${projectId})`),
  ]);
}
