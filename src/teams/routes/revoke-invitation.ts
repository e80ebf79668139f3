import { and, eq, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamInvitations } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { invitationOpen, selectInvitations, statusOf, teamInvitationParams } from "../invitations.ts";

export const revokeInvitation = defineRoute({
  method: "delete",
  path: "/v1/teams/:team/invitations/:invitation",
  summary: "Revoke an open invitation (an invitation to the owner role: owners only)",
  tag: "teams",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamInvitationParams,
  status: 204,
  async handler(c, { params, team: caller }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const mine = and(eq(teamInvitations.id, params.invitation), eq(teamInvitations.teamId, caller.teamId));
    const revocable = and(mine, invitationOpen, caller.role === "owner" ? undefined : sql`${teamInvitations.role} <> 'owner'`);
    const [, revoked, [row]] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "invitation.revoked", resourceType: "team_invitation", resourceId: params.invitation },
        { from: sql`FROM ${teamInvitations} WHERE ${revocable}`, teamId: sql`${teamInvitations.teamId}`, projectId: sql`NULL` },
      ),
      db.update(teamInvitations).set({ revokedAt: sql`now()` }).where(revocable).returning({ id: teamInvitations.id }),
      selectInvitations(db).where(mine),
    ]);
    if (revoked.length > 0) return c.body(null, 204);
    if (!row) throw new ApiError("NOT_FOUND", `invitation ${params.invitation} not found in team ${caller.slug}`);
    if (row.role === "owner" && caller.role !== "owner") throw new ApiError("FORBIDDEN", "only an owner can revoke an invitation to the owner role");
    throw new ApiError("CONFLICT", `this invitation was already ${statusOf(row)}`);
  },
});
