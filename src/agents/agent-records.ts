import { and, eq, notInArray } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../db/client.ts";
import { agentConnections, environments } from "../db/schema.ts";
import type { HelloMessage } from "./protocol.ts";

/**
 * The agent's row in `agent_connections` (and, for a preview agent, its environment's `last_heartbeat_at`, which the
 * reaper reads). Every function here is one database round trip.
 */
export interface AgentRef {
  agentId: string;
  environmentId: string | null;
}

function environmentHeartbeat(db: Db, agent: AgentRef, at: Date): BatchItem<"pg">[] {
  if (!agent.environmentId) return [];
  return [
    db
      .update(environments)
      .set({ lastHeartbeatAt: at })
      .where(and(eq(environments.id, agent.environmentId), notInArray(environments.status, ["terminated", "reaped"]))),
  ];
}

async function run(db: Db, items: BatchItem<"pg">[]): Promise<void> {
  const [first, ...rest] = items;
  if (!first) return;
  if (rest.length === 0) await first;
  else await db.batch([first, ...rest]);
}

export function recordConnected(db: Db, agent: AgentRef, hello: HelloMessage, ip: string | null, at: Date): Promise<void> {
  return run(db, [
    db
      .update(agentConnections)
      .set({
        status: "connected",
        ipAddress: ip ?? hello.system_info.ip_address,
        agentVersion: hello.version,
        systemInfo: hello.system_info,
        connectedAt: at,
        lastSeenAt: at,
        disconnectedAt: null,
      })
      .where(eq(agentConnections.agentId, agent.agentId)),
    ...environmentHeartbeat(db, agent, at),
  ]);
}

export function recordSeen(db: Db, agent: AgentRef, at: Date): Promise<void> {
  return run(db, [
    db.update(agentConnections).set({ lastSeenAt: at }).where(eq(agentConnections.agentId, agent.agentId)),
    ...environmentHeartbeat(db, agent, at),
  ]);
}

/** `lastSeen` is when the agent was last heard from: the reaper judges staleness from it, not from now. */
export function recordDisconnected(db: Db, agent: AgentRef, lastSeen: Date | null, at: Date): Promise<void> {
  return run(db, [
    db
      .update(agentConnections)
      .set({ status: "disconnected", disconnectedAt: at, ...(lastSeen ? { lastSeenAt: lastSeen } : {}) })
      .where(eq(agentConnections.agentId, agent.agentId)),
    ...(lastSeen ? environmentHeartbeat(db, agent, lastSeen) : []),
  ]);
}
