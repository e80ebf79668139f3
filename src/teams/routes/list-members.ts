import { and, eq } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { teamMembers, users } from "../../db/schema.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { memberSchema, toApiMember } from "../model.ts";

export const memberColumns = {
  userId: users.id,
  email: users.email,
  name: users.name,
  githubLogin: users.githubLogin,
  avatarUrl: users.avatarUrl,
  role: teamMembers.role,
  createdAt: teamMembers.createdAt,
};

export const listMembers = defineRoute({
  method: "get",
  path: "/v1/teams/:team/members",
  summary: "List a team's members and their roles",
  tag: "teams",
  access: { kind: "team", minRole: "viewer", resource: "team" },
  params: teamParams,
  query: pageQuery,
  response: pageSchema(memberSchema),
  async handler(c, { query, team: membership }) {
    const page = keyset(teamMembers.createdAt, teamMembers.userId, query);
    const rows = await dbOf(c)
      .select(memberColumns)
      .from(teamMembers)
      .innerJoin(users, eq(users.id, teamMembers.userId))
      .where(and(eq(teamMembers.teamId, membership.teamId), page.where))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    return c.json(page.page(rows, (r) => ({ at: r.createdAt, id: r.userId }), toApiMember));
  },
});
