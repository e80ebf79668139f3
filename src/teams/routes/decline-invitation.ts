import { and, eq, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamInvitations } from "../../db/schema.ts";
import { defineRoute } from "../../lib/route.ts";
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

export const declineInvitation = defineRoute({
  method: "post",
  path: "/v1/invitations/:id/decline",
  summary: "Decline an invitation addressed to you",
  tag: "teams",
  access: { kind: "user" },
  params: invitationParams,
  response: invitationSchema,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const me = auth.user.id;
    const db = dbOf(c);
    const declinable = and(eq(teamInvitations.id, params.id), invitationPending, invitationTeamLive, addressedTo(me));
    const [, declined, [row]] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "invitation.declined", resourceType: "team_invitation", resourceId: params.id },
        { from: sql`FROM ${teamInvitations} WHERE ${declinable}`, teamId: sql`${teamInvitations.teamId}`, projectId: sql`NULL` },
      ),
      db.update(teamInvitations).set({ declinedAt: sql`now()` }).where(declinable).returning({ id: teamInvitations.id }),
      selectInvitations(db, me).where(and(eq(teamInvitations.id, params.id), addressedTo(me))),
    ]);
    if (declined.length === 0) throw explainAnswer(params.id, row);
    return c.json(toApiInvitation(row!));
  },
});
