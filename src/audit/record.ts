import { sql, type SQL } from "drizzle-orm";
import type { Auth } from "../auth/middleware.ts";
import type { Db } from "../db/client.ts";
import { auditLogs } from "../db/schema.ts";
import { newId } from "../lib/ids.ts";

export interface AuditEntry {
  /** `<resource>.<verb>`, e.g. `secret.updated` */
  action: string;
  resourceType: string;
  resourceId: string;
  teamId?: string | null;
  projectId?: string | null;
  /** What changed; never secret values or tokens. */
  metadata?: Record<string, unknown>;
}

/** The audit row of a mutation, to go in the same batch as the change. */
export function auditInsert(db: Db, auth: Auth, entry: AuditEntry) {
  return db.insert(auditLogs).values({
    id: newId("auditLog"),
    actorId: auth.user.id,
    actorEmail: auth.user.email,
    actorIp: auth.ip,
    action: entry.action,
    resourceType: entry.resourceType,
    resourceId: entry.resourceId,
    teamId: entry.teamId ?? null,
    projectId: entry.projectId ?? null,
    metadata: entry.metadata ?? {},
  });
}

/**
 * The audit row of a conditional mutation: written only if `source` (a `FROM ... WHERE ...` that selects the row
 * the mutation touches, with the same conditions) matches. Placed before the mutation in the batch, so it also
 * works for deletes. `teamId` and `projectId` are SQL expressions over that row.
 */
export function auditInsertWhere(db: Db, auth: Auth, entry: Omit<AuditEntry, "teamId" | "projectId">, source: { from: SQL; teamId: SQL; projectId: SQL }) {
  return db.execute(sql`
    INSERT INTO audit_logs (id, actor_id, actor_email, actor_ip, action, resource_type, resource_id, team_id, project_id, metadata)
    SELECT ${newId("auditLog")}, ${auth.user.id}, ${auth.user.email}, ${auth.ip}, ${entry.action}, ${entry.resourceType},
           ${entry.resourceId}, ${source.teamId}, ${source.projectId}, ${JSON.stringify(entry.metadata ?? {})}::jsonb
    ${source.from}`);
}

/**
 * The audit row of a change GitHub made (an App installation's webhook): no Stagely actor; the GitHub account that
 * acted goes in the metadata. Written only where `source` matches, like auditInsertWhere.
 */
export function auditGitHubChangeWhere(db: Db, entry: Omit<AuditEntry, "teamId" | "projectId">, source: { from: SQL; teamId: SQL; projectId: SQL }) {
  return db.execute(sql`
    INSERT INTO audit_logs (id, actor_id, actor_email, actor_ip, action, resource_type, resource_id, team_id, project_id, metadata)
    SELECT ${newId("auditLog")}, NULL, NULL, NULL, ${entry.action}, ${entry.resourceType}, ${entry.resourceId},
           ${source.teamId}, ${source.projectId}, ${JSON.stringify(entry.metadata ?? {})}::jsonb
    ${source.from}`);
}
