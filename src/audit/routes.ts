import { and, eq, gte, lt } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../app-env.ts";
import { auditLogs } from "../db/schema.ts";
import { keyset, pageQuery, pageSchema } from "../lib/pagination.ts";
import { defineRoute } from "../lib/route.ts";
import { iso, teamParams, timestamp, timestampInput } from "../lib/schemas.ts";

export const auditLogSchema = z.object({
  id: z.string(),
  action: z.string(),
  resource_type: z.string(),
  resource_id: z.string().nullable(),
  team_id: z.string().nullable(),
  project_id: z.string().nullable(),
  actor_id: z.string().nullable(),
  actor_email: z.string().nullable(),
  actor_ip: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  timestamp,
});

export const listAuditLogs = defineRoute({
  method: "get",
  path: "/v1/teams/:team/audit-logs",
  summary: "The team's audit log, newest first",
  tag: "audit",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamParams,
  query: pageQuery.extend({
    action: z.string().max(100).optional().describe("e.g. secret.updated"),
    resource_type: z.string().max(50).optional(),
    resource_id: z.string().max(64).optional(),
    actor_id: z.string().max(64).optional(),
    since: timestampInput.optional().describe("inclusive"),
    until: timestampInput.optional().describe("exclusive"),
  }),
  response: pageSchema(auditLogSchema),
  async handler(c, { query, team: membership }) {
    const page = keyset(auditLogs.timestamp, auditLogs.id, query);
    const rows = await dbOf(c)
      .select()
      .from(auditLogs)
      .where(
        and(
          eq(auditLogs.teamId, membership.teamId),
          query.action ? eq(auditLogs.action, query.action) : undefined,
          query.resource_type ? eq(auditLogs.resourceType, query.resource_type) : undefined,
          query.resource_id ? eq(auditLogs.resourceId, query.resource_id) : undefined,
          query.actor_id ? eq(auditLogs.actorId, query.actor_id) : undefined,
          query.since ? gte(auditLogs.timestamp, new Date(query.since)) : undefined,
          query.until ? lt(auditLogs.timestamp, new Date(query.until)) : undefined,
          page.where,
        ),
      )
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    return c.json(
      page.page(
        rows,
        (r) => ({ at: r.timestamp, id: r.id }),
        (r) => ({
          id: r.id,
          action: r.action,
          resource_type: r.resourceType,
          resource_id: r.resourceId,
          team_id: r.teamId,
          project_id: r.projectId,
          actor_id: r.actorId,
          actor_email: r.actorEmail,
          actor_ip: r.actorIp,
          metadata: r.metadata,
          timestamp: iso(r.timestamp)!,
        }),
      ),
    );
  },
});
