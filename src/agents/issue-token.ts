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

/** A new agent before it is recorded: its id, the token for its VM's cloud-init and the token's SHA-256. */
export interface NewAgent {
  agentId: string;
  token: string;
  tokenHash: string;
}

/** Mints a new agent's id and token. Nothing is stored: record it in `agent_connections`, then `registerAgent`. */
export async function newAgent(): Promise<NewAgent> {
  const agentId = newId("agent");
  const token = newAgentToken(agentId);
  return { agentId, token, tokenHash: await hashAgentToken(token) };
}

/** Registers a recorded agent's token hash and assignment with its Durable Object, which is all a connect needs. */
export async function registerAgent(env: Env, agent: NewAgent, assignment: AgentAssignment): Promise<void> {
  await agentStub(env, agent.agentId).register({ agentId: agent.agentId, tokenHash: agent.tokenHash, ...assignmentColumns(assignment) });
}

function assignmentColumns(assignment: AgentAssignment) {
  return {
    role: assignment.role,
    buildJobId: assignment.role === "builder" ? assignment.buildJobId : null,
    environmentId: assignment.role === "preview" ? assignment.environmentId : null,
  };
}

/**
 * Issues the token of a new agent, for the cloud-init of the VM it will run on. Records the agent in
 * `agent_connections` (and, for a builder, as its job's `agent_id`) in one batch, then registers the token's hash
 * and the assignment with the agent's Durable Object. The token is returned once and stored nowhere: only its SHA-256.
 */
export async function issueAgentToken(env: Env, db: Db, assignment: AgentAssignment): Promise<{ agentId: string; token: string }> {
  const agent = await newAgent();
  const { agentId, tokenHash } = agent;
  const insert = db.insert(agentConnections).values({ agentId, tokenHash, ...assignmentColumns(assignment) });
  if (assignment.role === "builder") await db.batch([insert, db.update(buildJobs).set({ agentId }).where(eq(buildJobs.id, assignment.buildJobId))]);
  else await insert;
  await registerAgent(env, agent, assignment);
  return { agentId, token: agent.token };
}
