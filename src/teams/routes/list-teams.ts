import { and, inArray, isNull } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { teams } from "../../db/schema.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamSchema, toApiTeam } from "../model.ts";

export const listTeams = defineRoute({
  method: "get",
  path: "/v1/teams",
  summary: "List the teams you belong to",
  tag: "teams",
  access: { kind: "user" },
  query: pageQuery,
  response: pageSchema(teamSchema),
  async handler(c, { query }) {
    const auth = c.get("auth");
    const page = keyset(teams.createdAt, teams.id, query);
    const rows = await dbOf(c)
      .select()
      .from(teams)
      .where(and(inArray(teams.id, auth.memberships.map((m) => m.teamId)), isNull(teams.deletedAt), page.where))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    const roleOf = new Map(auth.memberships.map((m) => [m.teamId, m.role]));
    return c.json(page.page(rows, (r) => ({ at: r.createdAt, id: r.id }), (r) => toApiTeam(r, roleOf.get(r.id)!)));
  },
});
