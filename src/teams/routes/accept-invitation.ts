import { and, eq, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { teamInvitations, teamMembers } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { forgetCachedAuth } from "../../auth/auth-cache.ts";
import {
  addressedTo,
  explainAnswer,
  invitationParams,
  invitationPending,
  invitationSchema,
  invitationTeamLive,
  selectInvitations,
  toApiInvitation,
} from "../invitations.ts";

export const acceptInvitation = defineRoute({
  method: "post",
  path: "/v1/invitations/:id/accept",
  summary: "Accept an invitation addressed to you: you join the team with the invited role",
  tag: "teams",
  access: { kind: "user" },
  params: invitationParams,
  response: invitationSchema,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const me = auth.user.id;
    const db = dbOf(c);
    const notYetMember = sql`NOT EXISTS (SELECT 1 FROM ${teamMembers} m WHERE m.team_id = ${teamInvitations.teamId} AND m.user_id = ${me})`;
    const acceptable = and(eq(teamInvitations.id, params.id), invitationPending, invitationTeamLive, addressedTo(me), notYetMember);
    try {
      const [, accepted, , [row]] = await db.batch([
        auditInsertWhere(
          db,
          auth,
          { action: "invitation.accepted", resourceType: "team_invitation", resourceId: params.id },
          { from: sql`FROM ${teamInvitations} WHERE ${acceptable}`, teamId: sql`${teamInvitations.teamId}`, projectId: sql`NULL` },
        ),
        db.update(teamInvitations).set({ acceptedAt: sql`now()`, acceptedBy: me }).where(acceptable).returning({ id: teamInvitations.id }),
        // now() is the batch transaction's start, so this matches only the acceptance just written.
        db.execute(sql`
          INSERT INTO ${teamMembers} (team_id, user_id, role)
          SELECT team_id, ${me}, role FROM ${teamInvitations}
           WHERE id = ${params.id} AND accepted_by = ${me} AND accepted_at = now()`),
        selectInvitations(db, me).where(and(eq(teamInvitations.id, params.id), addressedTo(me))),
      ]);
      if (accepted.length === 0) throw explainAnswer(params.id, row);
      forgetCachedAuth();
      return c.json(toApiInvitation(row!));
    } catch (error) {
      if (databaseErrorOf(error)?.constraint === "team_members_pkey") throw new ApiError("CONFLICT", "you joined this team meanwhile");
      throw error;
    }
  },
});
