import { inArray } from "drizzle-orm";
import { agentStub } from "../agents/issue-token.ts";
import { agentConnections } from "../db/schema.ts";
import { environmentsWhere, publishPreviewHosts, publishSnapshots } from "../preview/snapshot.ts";
import type { PipelineContext } from "./context.ts";
import { admitAndClaim } from "./quotas.ts";
import type { SupersededJob } from "./runs.ts";
import { handleProvisionBuild } from "./steps/build.ts";

/**
 * A claimed build is provisioned in the message that claimed it (no queue hop between a webhook and its builder); its
 * `build_job.provision` message is still queued, delayed by this much, in case that attempt is cut short. It finds
 * the VM recorded and does nothing, or retries what failed (with the queue's backoff from then on).
 */
export const PROVISION_FALLBACK_SECONDS = 60;

/**
 * What follows a state change outside the database: agents told to stop and locked out, VMs terminated through
 * the queue (retried until the cloud confirms), and the team's queue of waiting work moved forward.
 */

/**
 * Tells each agent to stop and refuses its token for good (one call to its Durable Object), and records that in
 * `agent_connections.revoked_at`. Never throws: the caller's own work must go on. A revocation that fails is queued
 * as `agent.retire` (retried with backoff); should even that fail, the reaper finds the agent unrevoked.
 * Returns how many were revoked now.
 */
export async function retireAgents(ctx: PipelineContext, agentIds: (string | null)[], reason: string): Promise<number> {
  const failed: string[] = [];
  const revoked: string[] = [];
  await Promise.all(
    [...new Set(agentIds.filter((id): id is string => id !== null))].map(async (agentId) => {
      try {
        await agentStub(ctx.env, agentId).revoke(reason);
        revoked.push(agentId);
      } catch (error) {
        ctx.logger.warn("could not retire an agent; retrying through the queue", { agent_id: agentId, error: describe(error) });
        failed.push(agentId);
      }
    }),
  );
  try {
    await markRevoked(ctx, revoked);
    await ctx.send(failed.map((agentId) => ({ type: "agent.retire" as const, agent_id: agentId, reason })));
  } catch (error) {
    ctx.logger.error("could not record or queue agent revocations; the reaper will retry them", { agent_ids: [...revoked, ...failed], error: describe(error) });
  }
  return revoked.length;
}

/** `agent.retire`: one more try; a failure throws, so the queue retries it with backoff. */
export async function handleRetireAgent(ctx: PipelineContext, message: { agent_id: string; reason: string }): Promise<void> {
  await agentStub(ctx.env, message.agent_id).revoke(message.reason);
  await markRevoked(ctx, [message.agent_id]);
}

async function markRevoked(ctx: PipelineContext, agentIds: string[]): Promise<void> {
  if (agentIds.length > 0) await ctx.db.update(agentConnections).set({ revokedAt: new Date() }).where(inArray(agentConnections.agentId, agentIds));
}

function describe(error: unknown): Record<string, unknown> {
  return error instanceof Error ? { name: error.name, message: error.message } : {};
}

export function terminateVms(ctx: PipelineContext, vms: { instanceId: string | null; cloudProviderId: string | null; region: string | null }[]): Promise<void> {
  return ctx.send(
    vms
      .filter((vm): vm is { instanceId: string; cloudProviderId: string; region: string | null } => vm.instanceId !== null && vm.cloudProviderId !== null)
      .map((vm) => ({ type: "vm.terminate" as const, cloud_provider_id: vm.cloudProviderId, instance_id: vm.instanceId, region: vm.region })),
  );
}

export async function retireBuilders(ctx: PipelineContext, jobs: SupersededJob[], reason: string): Promise<void> {
  await retireAgents(ctx, jobs.map((j) => j.agent_id), reason);
  await terminateVms(ctx, jobs.map((j) => ({ instanceId: j.vm_id, cloudProviderId: j.cloud_provider_id, region: null })));
}

/**
 * Admits waiting environments and hands free build slots to queued jobs of the team, provisioning their builders.
 * `publish`: environments whose preview hosts must see what changed, read in the scheduling's own round trip.
 * `failedRuns`: runs one of whose claimed jobs failed for good while provisioning (settled and reported to GitHub).
 */
export async function scheduleTeam(ctx: PipelineContext, teamId: string, options: { publish?: (string | null | undefined)[] } = {}): Promise<{ failedRuns: string[] }> {
  const publish = options.publish ?? [];
  const { admitted, claimed, snapshots } = await admitAndClaim(ctx.db, teamId, environmentsWhere(publish));
  await publishSnapshots(ctx.env, snapshots, ctx.logger);
  // Admitted ones not already read above: only when environments waited for room.
  await publishPreviewHosts(ctx.env, ctx.db, admitted.filter((id) => !publish.includes(id)), ctx.logger);
  const provision = (jobId: string) => ({ type: "build_job.provision" as const, job_id: jobId });
  await ctx.send(claimed.map(provision), { delaySeconds: PROVISION_FALLBACK_SECONDS });
  const retry: string[] = [];
  const outcomes = await Promise.all(
    claimed.map((jobId) =>
      handleProvisionBuild(ctx, jobId).catch((error: unknown) => {
        ctx.logger.warn("provisioning a builder failed; retrying through the queue", { job_id: jobId, error: describe(error) });
        retry.push(jobId);
        return null;
      }),
    ),
  );
  await ctx.send(retry.map(provision));
  return { failedRuns: outcomes.filter((runId): runId is string => runId !== null) };
}
