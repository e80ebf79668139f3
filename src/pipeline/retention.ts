import { sql, type SQL } from "drizzle-orm";
import { auditLogs, buildJobs, buildLogs, webhookDeliveries } from "../db/schema.ts";
import type { PipelineContext } from "./context.ts";

/** Rows one DELETE removes at most, and DELETEs per table per reaper run: bounded work every 5 minutes. */
export const RETENTION_BATCH_ROWS = 5_000;
export const RETENTION_MAX_BATCHES = 20;

export interface RetentionReport {
  build_logs: number;
  webhook_deliveries: number;
  audit_logs: number;
}

/**
 * The reaper's retention step: deletes build logs of jobs finished more than BUILD_LOG_RETENTION_DAYS ago, webhook
 * delivery ids older than WEBHOOK_DELIVERY_RETENTION_DAYS and audit rows older than AUDIT_LOG_RETENTION_DAYS, in
 * batches of RETENTION_BATCH_ROWS (one statement each), at most RETENTION_MAX_BATCHES per table per run; what is left
 * goes on the next run. Returns how many rows went.
 */
export async function applyRetention(ctx: PipelineContext): Promise<RetentionReport> {
  const { BUILD_LOG_RETENTION_DAYS, WEBHOOK_DELIVERY_RETENTION_DAYS, AUDIT_LOG_RETENTION_DAYS } = ctx.config;
  const before = (days: number) => sql`now() - make_interval(days => ${days})`;
  return {
    build_logs: await deleteInBatches(ctx, (limit) => sql`
      DELETE FROM ${buildLogs} WHERE id IN (
        SELECT l.id FROM ${buildJobs} j JOIN ${buildLogs} l ON l.build_job_id = j.id
         WHERE j.completed_at < ${before(BUILD_LOG_RETENTION_DAYS)} LIMIT ${limit})`),
    webhook_deliveries: await deleteInBatches(ctx, (limit) => sql`
      DELETE FROM ${webhookDeliveries} WHERE delivery_id IN (
        SELECT delivery_id FROM ${webhookDeliveries} WHERE received_at < ${before(WEBHOOK_DELIVERY_RETENTION_DAYS)} LIMIT ${limit})`),
    audit_logs: await deleteInBatches(ctx, (limit) => sql`
      DELETE FROM ${auditLogs} WHERE id IN (
        SELECT id FROM ${auditLogs} WHERE timestamp < ${before(AUDIT_LOG_RETENTION_DAYS)} LIMIT ${limit})`),
  };
}

async function deleteInBatches(ctx: PipelineContext, deletion: (limit: number) => SQL): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < RETENTION_MAX_BATCHES; batch++) {
    const { rows } = await ctx.db.execute<{ n: number }>(sql`WITH deleted AS (${deletion(RETENTION_BATCH_ROWS)} RETURNING 1) SELECT count(*)::int AS n FROM deleted`);
    const deleted = Number(rows[0]?.n ?? 0);
    total += deleted;
    if (deleted < RETENTION_BATCH_ROWS) break;
  }
  return total;
}
