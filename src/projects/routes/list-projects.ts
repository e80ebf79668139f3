import { and, eq } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { projects } from "../../db/schema.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { projectSchema, toApiProject } from "../model.ts";

export const listProjects = defineRoute({
  method: "get",
  path: "/v1/teams/:team/projects",
  summary: "List a team's projects",
  tag: "projects",
  access: { kind: "team", minRole: "viewer", resource: "team" },
  params: teamParams,
  query: pageQuery,
  response: pageSchema(projectSchema),
  async handler(c, { query, team: membership }) {
    const page = keyset(projects.createdAt, projects.id, query);
    const rows = await dbOf(c)
      .select()
      .from(projects)
      .where(and(eq(projects.teamId, membership.teamId), page.where))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    return c.json(page.page(rows, (r) => ({ at: r.createdAt, id: r.id }), toApiProject));
  },
});
