import { agentStub } from "../agents/issue-token.ts";
import { publishPreviewHosts } from "../preview/snapshot.ts";
import type { PipelineContext } from "./context.ts";
import { admitEnvironments, claimBuildSlots } from "./quotas.ts";
import type { SupersededJob } from "./runs.ts";

/**
 * What follows a state change outside the database: agents told to stop and locked out, VMs terminated through
 * the queue (retried until the cloud confirms), and the team's queue of waiting work moved forward.
 */

export async function retireAgents(ctx: PipelineContext, agentIds: (string | null)[], reason: string): Promise<void> {
  await Promise.all(
    agentIds.filter((id): id is string => id !== null).map(async (agentId) => {
      try {
        // One call: the agent's Durable Object tells a connected agent to stop, then refuses its token for good.
        await agentStub(ctx.env, agentId).revoke(reason);
      } catch (error) {
        ctx.logger.warn("could not retire an agent", { agent_id: agentId, error: error instanceof Error ? { name: error.name, message: error.message } : {} });
      }
    }),
  );
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

/** Admits waiting environments and hands free build slots to queued jobs of the team. */
export async function scheduleTeam(ctx: PipelineContext, teamId: string): Promise<void> {
  await publishPreviewHosts(ctx.env, ctx.db, await admitEnvironments(ctx.db, teamId), ctx.logger);
  const claimed = await claimBuildSlots(ctx.db, teamId);
  await ctx.send(claimed.map((jobId) => ({ type: "build_job.provision" as const, job_id: jobId })));
}
