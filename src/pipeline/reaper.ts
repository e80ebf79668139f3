import { and, eq, inArray, sql } from "drizzle-orm";
import { agentConnections, auditLogs, buildJobs, cloudProviders, environments, liveEnvironmentStatuses, projects } from "../db/schema.ts";
import { newId } from "../lib/ids.ts";
import { providerFromRow } from "../providers/factory.ts";
import type { PipelineContext } from "./context.ts";
import { retireAgents, terminateVms } from "./effects.ts";
import { teamsWithWaitingWork } from "./quotas.ts";
import { applyRetention, type RetentionReport } from "./retention.ts";
import { failJob } from "./steps/build.ts";
import { teardownEffects } from "./steps/teardown.ts";
import { endEnvironment } from "./transitions.ts";

/** A preview whose agent has not been heard from for this long is gone. */
export const HEARTBEAT_TIMEOUT_MINUTES = 15;
/** A VM whose agent never connected within this long never will. */
export const PROVISIONING_TIMEOUT_MINUTES = 20;
/** A build gets this much beyond its own timeout before it is called stuck. */
export const BUILD_GRACE_MINUTES = 10;
/** A cloud VM younger than this may not be recorded yet, so the orphan scan leaves it alone. */
export const ORPHAN_GRACE_MINUTES = 10;
/** Agents whose revocation is retried per run, at most. */
export const RETIRE_BATCH = 100;

export interface ReaperReport {
  environments: number;
  builds: number;
  orphans: number;
  /** Agents of ended jobs or environments whose token was still accepted (an earlier revocation failed). */
  agentsRetired: number;
  /** Rows deleted by retention, per table. */
  purged: RetentionReport;
  scanErrors: string[];
}

/**
 * The Cron Trigger's sweep, so that no VM outlives what it was for: live environments without a heartbeat, or that
 * never connected, or past their time to live; stuck builds; and VMs tagged as Stagely's that nothing live owns.
 * Then the housekeeping: agents whose revocation failed are revoked, and old logs and records deleted.
 */
export async function runReaper(ctx: PipelineContext): Promise<ReaperReport> {
  const report: ReaperReport = {
    environments: 0,
    builds: 0,
    orphans: 0,
    agentsRetired: 0,
    purged: { build_logs: 0, webhook_deliveries: 0, audit_logs: 0 },
    scanErrors: [],
  };

  const doomed = await ctx.db.execute<{ id: string; team_id: string; project_id: string; reason: string }>(sql`
    SELECT e.id, p.team_id, p.id AS project_id,
           CASE WHEN e.created_at < now() - make_interval(hours => p.preview_ttl_hours) THEN 'past its time to live of ' || p.preview_ttl_hours || ' h'
                WHEN e.last_heartbeat_at IS NOT NULL THEN 'no heartbeat for ${sql.raw(String(HEARTBEAT_TIMEOUT_MINUTES))} minutes'
                ELSE 'its preview agent never connected' END AS reason
      FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id
     WHERE e.status IN ('pending', 'building', 'deploying', 'ready', 'failed')
       AND (e.created_at < now() - make_interval(hours => p.preview_ttl_hours)
            OR e.last_heartbeat_at < now() - interval '${sql.raw(String(HEARTBEAT_TIMEOUT_MINUTES))} minutes'
            OR (e.last_heartbeat_at IS NULL AND e.vm_id IS NOT NULL AND e.updated_at < now() - interval '${sql.raw(String(PROVISIONING_TIMEOUT_MINUTES))} minutes'))`);
  for (const row of doomed.rows) {
    const audit = ctx.db.execute(sql`
      INSERT INTO ${auditLogs} (id, action, resource_type, resource_id, team_id, project_id, metadata)
      SELECT ${newId("auditLog")}, 'environment.reaped', 'environment', ${row.id}, ${row.team_id}, ${row.project_id}, ${JSON.stringify({ reason: row.reason })}::jsonb
       WHERE EXISTS (SELECT 1 FROM ${environments} WHERE id = ${row.id} AND status IN ('pending', 'building', 'deploying', 'ready', 'failed'))`);
    const target = await endEnvironment(ctx.db, { environmentId: row.id }, "reaped", sql`true`, [audit]);
    if (target) {
      report.environments++;
      await teardownEffects(ctx, target, row.team_id, `reaped: ${row.reason}`);
    }
  }

  const stuck = await ctx.db.execute<{ id: string; reason: string }>(sql`
    SELECT id, CASE WHEN status = 'provisioning' THEN 'its builder never started' ELSE 'it ran past its timeout' END AS reason
      FROM ${buildJobs}
     WHERE (status = 'provisioning' AND queued_at < now() - interval '${sql.raw(String(PROVISIONING_TIMEOUT_MINUTES))} minutes' AND updated_at < now() - interval '${sql.raw(String(PROVISIONING_TIMEOUT_MINUTES))} minutes')
        OR (status = 'running' AND coalesce(started_at, queued_at) + make_interval(secs => timeout_seconds) < now() - interval '${sql.raw(String(BUILD_GRACE_MINUTES))} minutes')`);
  for (const job of stuck.rows) {
    if (await failJob(ctx, job.id, `reaped: ${job.reason}`)) report.builds++;
  }

  // Waiting work whose scheduling was lost (a step that failed after freeing room) moves on here at the latest,
  // through the queue (retried there; one team's trouble does not stop this sweep).
  await ctx.send((await teamsWithWaitingWork(ctx.db)).map((teamId) => ({ type: "team.schedule" as const, team_id: teamId })));

  report.orphans = await terminateOrphans(ctx, report);
  report.agentsRetired = await retireLeftoverAgents(ctx);
  report.purged = await applyRetention(ctx);
  return report;
}

/**
 * Agents not yet recorded as revoked whose job is over (or that a newer provisioning attempt replaced) or whose
 * environment ended: a revocation failed, or was lost with a queue message. Retired again (idempotent).
 */
async function retireLeftoverAgents(ctx: PipelineContext): Promise<number> {
  const { rows } = await ctx.db.execute<{ agent_id: string }>(sql`
    SELECT a.agent_id FROM ${agentConnections} a
      LEFT JOIN ${buildJobs} j ON j.id = a.build_job_id
      LEFT JOIN ${environments} e ON e.id = a.environment_id
     WHERE a.revoked_at IS NULL
       AND (j.status IN ('completed', 'failed', 'cancelled') OR j.agent_id IS DISTINCT FROM a.agent_id AND a.role = 'builder'
            OR e.status IN ('terminated', 'reaped'))
     ORDER BY a.created_at LIMIT ${RETIRE_BATCH}`);
  return retireAgents(ctx, rows.map((r) => r.agent_id), "its job or environment is over");
}

/** VMs in each cloud account tagged as Stagely's whose environment or job is over (or never recorded them). */
async function terminateOrphans(ctx: PipelineContext, report: ReaperReport): Promise<number> {
  const accounts = await ctx.db.select().from(cloudProviders).where(eq(cloudProviders.isActive, true));
  let terminated = 0;
  for (const account of accounts) {
    let instances;
    try {
      instances = await (await providerFromRow(account, ctx.keyring, { stage: ctx.config.STAGELY_ENV })).findInstances();
    } catch (error) {
      report.scanErrors.push(`${account.id}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const settled = instances.filter((i) => !i.createdAt || Date.parse(i.createdAt) < Date.now() - ORPHAN_GRACE_MINUTES * 60_000);
    const jobIds = settled.flatMap((i) => (i.tags.job_id ? [i.tags.job_id] : []));
    const environmentIds = settled.flatMap((i) => (!i.tags.job_id && i.tags.environment_id ? [i.tags.environment_id] : []));
    const liveJobs = jobIds.length
      ? await ctx.db.select({ id: buildJobs.id, vmId: buildJobs.vmId }).from(buildJobs).where(and(inArray(buildJobs.id, jobIds), inArray(buildJobs.status, ["provisioning", "running"])))
      : [];
    const liveEnvironments = environmentIds.length
      ? await ctx.db.select({ id: environments.id, vmId: environments.vmId }).from(environments).where(and(inArray(environments.id, environmentIds), inArray(environments.status, liveEnvironmentStatuses)))
      : [];
    const owned = new Set([...liveJobs.map((j) => `${j.id}:${j.vmId}`), ...liveEnvironments.map((e) => `${e.id}:${e.vmId}`)]);
    const orphans = settled.filter((i) => {
      const owner = i.tags.job_id ?? i.tags.environment_id;
      // A provisioning job may not have recorded its VM id yet; its VM is still its own.
      if (i.tags.job_id && liveJobs.some((j) => j.id === i.tags.job_id && j.vmId === null)) return false;
      return owner !== undefined && !owned.has(`${owner}:${i.id}`);
    });
    await terminateVms(ctx, orphans.map((i) => ({ instanceId: i.id, cloudProviderId: account.id, region: i.region })));
    terminated += orphans.length;
  }
  return terminated;
}
