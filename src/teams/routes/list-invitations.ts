import { and, eq } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { teamInvitations } from "../../db/schema.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { invitationSchema, selectInvitations, toApiInvitation } from "../invitations.ts";

export const listInvitations = defineRoute({
  method: "get",
  path: "/v1/teams/:team/invitations",
  summary: "The team's invitations, newest first, with their status (pending, accepted, declined, revoked, expired)",
  tag: "teams",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamParams,
  query: pageQuery,
  response: pageSchema(invitationSchema),
  async handler(c, { query, team: caller }) {
    const page = keyset(teamInvitations.createdAt, teamInvitations.id, query);
    const rows = await selectInvitations(dbOf(c))
      .where(and(eq(teamInvitations.teamId, caller.teamId), page.where))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    return c.json(page.page(rows, (r) => ({ at: r.createdAt, id: r.id }), toApiInvitation));
  },
});
