import { and, eq } from "drizzle-orm";
import { cloudProviders, environments } from "../../db/schema.ts";
import { providerFromRow } from "../../providers/factory.ts";
import type { PipelineContext } from "../context.ts";
import { retireAgents, scheduleTeam, terminateVms } from "../effects.ts";
import { reportToGitHub } from "../github-report.ts";
import { loadEnvironment } from "../records.ts";
import { publishPreviewHosts } from "../../preview/snapshot.ts";
import { endEnvironment, type TeardownTarget } from "../transitions.ts";

/** After an environment ended: agents stopped, every VM terminated, GitHub told, the team's queue moved on. */
export async function teardownEffects(ctx: PipelineContext, target: TeardownTarget, teamId: string, reason: string): Promise<void> {
  await publishPreviewHosts(ctx.env, ctx.db, [target.environment.id], ctx.logger);
  await retireAgents(ctx, target.agentIds, reason);
  await terminateVms(ctx, [
    { instanceId: target.environment.vm_id, cloudProviderId: target.environment.cloud_provider_id, region: target.environment.region },
    ...target.jobs.map((j) => ({ instanceId: j.vm_id, cloudProviderId: j.cloud_provider_id, region: null })),
  ]);
  const loaded = await loadEnvironment(ctx.db, target.environment.id);
  if (loaded) await reportToGitHub(ctx, loaded, "inactive", { message: `The preview was removed: ${reason}.` });
  await scheduleTeam(ctx, teamId);
}

/** `environment.teardown`: a user deleted the environment, or the reaper took it. */
export async function handleTeardown(ctx: PipelineContext, environmentId: string, reason: "deleted" | "pr_closed" | "reaped"): Promise<void> {
  const loaded = await loadEnvironment(ctx.db, environmentId);
  if (!loaded) return;
  const target = await endEnvironment(ctx.db, { environmentId }, reason === "reaped" ? "reaped" : "terminated");
  if (target) {
    const why = { deleted: "deleted by a user", pr_closed: "the pull request was closed", reaped: "reaped (no heartbeat or past its time to live)" }[reason];
    await teardownEffects(ctx, target, loaded.project.teamId, why);
  }
}

/** `vm.terminate`: idempotent (an unknown or already terminated VM is success); retryable errors throw to retry. */
export async function handleTerminateVm(ctx: PipelineContext, message: { cloud_provider_id: string; instance_id: string; region: string | null }): Promise<void> {
  const [row] = await ctx.db.select().from(cloudProviders).where(eq(cloudProviders.id, message.cloud_provider_id));
  if (!row) {
    ctx.logger.error("cannot terminate a VM: its cloud provider was deleted", { cloud_provider_id: message.cloud_provider_id, instance_id: message.instance_id });
    return;
  }
  const provider = await providerFromRow(row, ctx.keyring, { stage: ctx.config.STAGELY_ENV });
  await provider.terminateInstance(message.instance_id, message.region ?? undefined);
  await ctx.db
    .update(environments)
    .set({ vmStatus: "terminated" })
    .where(and(eq(environments.vmId, message.instance_id), eq(environments.cloudProviderId, message.cloud_provider_id)));
}
