import { agentRelease } from "../agents/agent-release.ts";
import type { cloudProviders } from "../db/schema.ts";
import { renderCloudInit, type CloudInitInput } from "../providers/cloud-init.ts";
import { providerFromRow } from "../providers/factory.ts";
import type { Instance, InstanceSpec, InstanceTags } from "../providers/types.ts";
import type { PipelineContext } from "./context.ts";

/**
 * Creates a VM whose cloud-init installs and starts the agent with its token (builder or preview). The agent id is
 * the idempotency key, so a retried attempt finds the VM the first one made.
 */
export async function bootAgentVm(
  ctx: PipelineContext,
  provider: typeof cloudProviders.$inferSelect,
  vm: Pick<InstanceSpec, "size" | "region"> & { tags: Omit<InstanceTags, "agent_id"> },
  agent: Omit<CloudInitInput, "coreUrl" | "agentSha256">,
): Promise<Instance> {
  const cloud = await providerFromRow(provider, ctx.keyring, { stage: ctx.config.STAGELY_ENV });
  return cloud.createInstance({
    size: vm.size,
    architecture: agent.architecture,
    region: vm.region,
    userData: renderCloudInit({ ...agent, coreUrl: ctx.config.PUBLIC_URL, agentSha256: (await agentRelease(ctx.env)).sha256 }),
    tags: { ...vm.tags, agent_id: agent.agentId },
    idempotencyKey: agent.agentId,
  });
}
