import { and, eq, isNull } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { teams } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { teamSchema, toApiTeam } from "../model.ts";

export const getTeam = defineRoute({
  method: "get",
  path: "/v1/teams/:team",
  summary: "Get a team by id or slug",
  tag: "teams",
  access: { kind: "team", minRole: "viewer", resource: "team" },
  params: teamParams,
  response: teamSchema,
  async handler(c, { params, team: membership }) {
    const [team] = await dbOf(c).select().from(teams).where(and(eq(teams.id, membership.teamId), isNull(teams.deletedAt)));
    if (!team) throw new ApiError("NOT_FOUND", `team ${params.team} not found`);
    return c.json(toApiTeam(team, membership.role));
  },
});
