import { and } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { teamInvitations } from "../../db/schema.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { addressedTo, invitationPending, invitationSchema, invitationTeamLive, selectInvitations, toApiInvitation } from "../invitations.ts";

export const listMyInvitations = defineRoute({
  method: "get",
  path: "/v1/invitations",
  summary: "Invitations waiting for your answer: addressed to your GitHub login or your verified email",
  tag: "teams",
  access: { kind: "user" },
  query: pageQuery,
  response: pageSchema(invitationSchema),
  async handler(c, { query }) {
    const page = keyset(teamInvitations.createdAt, teamInvitations.id, query);
    const rows = await selectInvitations(dbOf(c))
      .where(and(invitationPending, invitationTeamLive, addressedTo(c.get("auth").user.id), page.where))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    return c.json(page.page(rows, (r) => ({ at: r.createdAt, id: r.id }), toApiInvitation));
  },
});
