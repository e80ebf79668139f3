import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { agentConnections, buildJobs } from "../db/schema.ts";
import { newId } from "../lib/ids.ts";
import { hashAgentToken, newAgentToken } from "./tokens.ts";

export type AgentAssignment = { role: "builder"; buildJobId: string } | { role: "preview"; environmentId: string };

/** The Durable Object stub of an agent (one per agent id). */
export function agentStub(env: Env, agentId: string) {
  return env.AGENTS.get(env.AGENTS.idFromName(agentId));
}

/**
 * Issues the token of a new agent, for the cloud-init of the VM it will run on. Records the agent in
 * `agent_connections` (and, for a builder, as its job's `agent_id`) in one batch, then registers the token's hash
 * and the assignment with the agent's Durable Object, which is all a connect needs. The token is returned once
 * and stored nowhere: only its SHA-256.
 */
export async function issueAgentToken(env: Env, db: Db, assignment: AgentAssignment): Promise<{ agentId: string; token: string }> {
  const agentId = newId("agent");
  const token = newAgentToken(agentId);
  const tokenHash = await hashAgentToken(token);
  const buildJobId = assignment.role === "builder" ? assignment.buildJobId : null;
  const environmentId = assignment.role === "preview" ? assignment.environmentId : null;
  const insert = db.insert(agentConnections).values({ agentId, role: assignment.role, tokenHash, buildJobId, environmentId });
  if (buildJobId) await db.batch([insert, db.update(buildJobs).set({ agentId }).where(eq(buildJobs.id, buildJobId))]);
  else await insert;
  await agentStub(env, agentId).register({ agentId, tokenHash, role: assignment.role, buildJobId, environmentId });
  return { agentId, token };
}
