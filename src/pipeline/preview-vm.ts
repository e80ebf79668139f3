import { and, eq, sql } from "drizzle-orm";
import { newAgent, registerAgent } from "../agents/issue-token.ts";
import { agentConnections, environments, type cloudProviders } from "../db/schema.ts";
import { bootAgentVm } from "./agent-vms.ts";
import type { PipelineContext } from "./context.ts";
import { retireAgents, terminateVms } from "./effects.ts";
import { previewAgentIdColumn } from "./records.ts";

/** The architecture of every preview VM, and so of every image built on one (default mode). */
export const PREVIEW_ARCHITECTURE = "amd64";

/** A claim on creating an environment's preview VM older than this is taken to be abandoned (its worker died). */
const CLAIM_STALE_SECONDS = 120;

/** Thrown while another message is creating the environment's preview VM: the queue retries it with backoff. */
export class PreviewVmPendingError extends Error {
  constructor() {
    super("the environment's preview VM is being created by another job; retrying");
    this.name = "PreviewVmPendingError";
  }
}

type Environment = typeof environments.$inferSelect;
type Provider = typeof cloudProviders.$inferSelect;

/**
 * The agent of the environment's preview VM, creating the VM when it has none (or only a terminated one). The first
 * build of a run (default mode) or the deploy, whichever comes first, makes it; every later push reuses it.
 * `previewAgentId` is the environment's preview agent as read with `environment` (`previewAgentIdColumn`). Two jobs
 * of one run may ask at once: a conditional UPDATE lets exactly one of them create the VM, the other throws
 * PreviewVmPendingError and is retried by the queue once the VM is recorded. Null when the environment ended.
 */
export async function ensurePreviewVm(ctx: PipelineContext, environment: Environment, provider: Provider, previewAgentId: string | null): Promise<string | null> {
  if (environment.vmId && environment.vmStatus !== "terminated" && previewAgentId) return previewAgentId;
  const agent = await newAgent();
  // The claim and the new agent's row in one statement: the row exists only if this claim won.
  const { rows: claimed } = await ctx.db.execute<{ agent_id: string }>(sql`
    WITH claimed AS (
      UPDATE ${environments} SET vm_id = NULL, vm_ip = NULL, vm_status = 'provisioning'
       WHERE ${environments.id} = ${environment.id}
         AND ${environments.status} IN ('building', 'deploying')
         AND (${environments.vmId} IS NULL OR ${environments.vmStatus} = 'terminated')
         AND (${environments.vmStatus} <> 'provisioning' OR ${environments.updatedAt} < now() - make_interval(secs => ${CLAIM_STALE_SECONDS}))
      RETURNING id)
    INSERT INTO ${agentConnections} (agent_id, role, token_hash, environment_id)
    SELECT ${agent.agentId}, 'preview', ${agent.tokenHash}, id FROM claimed
    RETURNING agent_id`);
  if (claimed.length === 0) {
    const [current] = await ctx.db
      .select({ vmId: environments.vmId, vmStatus: environments.vmStatus, status: environments.status, previewAgentId: previewAgentIdColumn })
      .from(environments)
      .where(eq(environments.id, environment.id));
    if (!current || !["building", "deploying"].includes(current.status)) return null;
    if (current.vmId && current.vmStatus !== "terminated") return current.previewAgentId;
    throw new PreviewVmPendingError();
  }

  await registerAgent(ctx.env, agent, { role: "preview", environmentId: environment.id });
  const { agentId, token } = agent;
  const instance = await bootAgentVm(
    ctx,
    provider,
    { size: environment.size, region: environment.region, tags: { environment_id: environment.id } },
    { agentId, token, role: "preview", environmentId: environment.id, architecture: PREVIEW_ARCHITECTURE },
  );
  const [recorded] = await ctx.db
    .update(environments)
    .set({ vmId: instance.id, vmIp: instance.publicIp, vmStatus: instance.state === "running" ? "running" : "provisioning" })
    .where(and(eq(environments.id, environment.id), sql`${environments.status} IN ('building', 'deploying')`))
    .returning({ id: environments.id });
  if (!recorded) {
    // The environment ended while its VM was being made.
    await terminateVms(ctx, [{ instanceId: instance.id, cloudProviderId: provider.id, region: environment.region }]);
    await retireAgents(ctx, [agentId], "the environment ended");
    return null;
  }
  return agentId;
}
