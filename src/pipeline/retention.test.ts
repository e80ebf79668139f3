import { env } from "cloudflare:workers";
import { eq, inArray, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { countRoundTrips, db, waitForQuiet } from "../../test/db.ts";
import { seedPipeline, seedProject, seedTeam, seedUser } from "../../test/harness.ts";
import { auditLogs, buildJobs, buildLogs, webhookDeliveries } from "../db/schema.ts";
import { getConfig } from "../config.ts";
import { newId } from "../lib/ids.ts";
import { Logger } from "../lib/logger.ts";
import { pipelineContext } from "./context.ts";
import { runReaper } from "./reaper.ts";
import { applyRetention, RETENTION_BATCH_ROWS } from "./retention.ts";

const config = getConfig(env);
const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000);

async function jobWithLogs(completedDaysAgo: number | null, lines = 3) {
  const owner = await seedUser();
  const team = await seedTeam([{ user: owner, role: "owner" }]);
  const { job } = await seedPipeline((await seedProject(team.id)).id);
  if (completedDaysAgo !== null) {
    await db.update(buildJobs).set({ status: "completed", completedAt: daysAgo(completedDaysAgo) }).where(eq(buildJobs.id, job.id));
  }
  await db.insert(buildLogs).values(Array.from({ length: lines }, (_, i) => ({ buildJobId: job.id, seq: i + 1, timestamp: daysAgo(400), stream: "stdout" as const, line: `line ${i + 1}` })));
  return job.id;
}

const logCount = async (jobId: string) => (await db.select({ n: sql<number>`count(*)::int` }).from(buildLogs).where(eq(buildLogs.buildJobId, jobId)))[0]!.n;

describe("retention (the reaper's step)", () => {
  it("deletes build logs of jobs finished before BUILD_LOG_RETENTION_DAYS, old delivery ids and audit rows, and nothing else", async () => {
    const expired = await jobWithLogs(config.BUILD_LOG_RETENTION_DAYS + 1);
    const recent = await jobWithLogs(config.BUILD_LOG_RETENTION_DAYS - 1);
    const running = await jobWithLogs(null);
    const [oldDelivery, newDelivery] = [newId("auditLog"), newId("auditLog")];
    await db.insert(webhookDeliveries).values([
      { deliveryId: oldDelivery, event: "pull_request", receivedAt: daysAgo(config.WEBHOOK_DELIVERY_RETENTION_DAYS + 1) },
      { deliveryId: newDelivery, event: "pull_request", receivedAt: daysAgo(config.WEBHOOK_DELIVERY_RETENTION_DAYS - 1) },
    ]);
    const [oldAudit, newAudit] = [newId("auditLog"), newId("auditLog")];
    await db.insert(auditLogs).values([
      { id: oldAudit, action: "secret.created", resourceType: "secret", timestamp: daysAgo(config.AUDIT_LOG_RETENTION_DAYS + 1) },
      { id: newAudit, action: "secret.created", resourceType: "secret", timestamp: daysAgo(config.AUDIT_LOG_RETENTION_DAYS - 1) },
    ]);

    const report = await applyRetention(await pipelineContext(env, new Logger("error")));
    expect(report).toMatchObject({ build_logs: 3, webhook_deliveries: 1 });
    expect(report.audit_logs).toBeGreaterThanOrEqual(1);
    expect([await logCount(expired), await logCount(recent), await logCount(running)]).toEqual([0, 3, 3]);
    const deliveries = await db.select().from(webhookDeliveries).where(inArray(webhookDeliveries.deliveryId, [oldDelivery, newDelivery]));
    expect(deliveries.map((d) => d.deliveryId)).toEqual([newDelivery]);
    const audits = await db.select().from(auditLogs).where(inArray(auditLogs.id, [oldAudit, newAudit]));
    expect(audits.map((a) => a.id)).toEqual([newAudit]);
  });

  it("deletes in batches of RETENTION_BATCH_ROWS, one statement each", { timeout: 60_000 }, async () => {
    const rows = 2 * RETENTION_BATCH_ROWS + 17;
    await db.execute(sql`
      INSERT INTO ${auditLogs} (id, action, resource_type, timestamp)
      SELECT 'aud_batch' || lpad(i::text, 11, '0'), 'secret.created', 'secret', now() - make_interval(days => ${config.AUDIT_LOG_RETENTION_DAYS + 2})
        FROM generate_series(1, ${rows}) AS i`);
    const ctx = await pipelineContext(env, new Logger("error"));
    await waitForQuiet();
    let report!: Awaited<ReturnType<typeof applyRetention>>;
    const trips = await countRoundTrips(async () => (report = await applyRetention(ctx)));
    expect(report.audit_logs).toBe(rows);
    // Three batches of audit rows, one statement for each of the two other tables.
    expect(trips).toBe(3 + 1 + 1);
    const [left] = await db.select({ n: sql<number>`count(*)::int` }).from(auditLogs).where(sql`${auditLogs.id} LIKE 'aud_batch%'`);
    expect(left!.n).toBe(0);
  });

  it("runs with every reaper run", async () => {
    const expired = await jobWithLogs(config.BUILD_LOG_RETENTION_DAYS + 1);
    const report = await runReaper(await pipelineContext(env, new Logger("error")));
    expect(report.purged.build_logs).toBeGreaterThanOrEqual(3);
    expect(await logCount(expired)).toBe(0);
  });
});
