import { and, eq, inArray } from "drizzle-orm";
import * as z from "zod";
import { configOf, dbOf } from "../../app-env.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { environments, environmentStatuses, liveEnvironmentStatuses, projects } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { projectParams } from "../../projects/model.ts";
import { environmentFailure, environmentSchema, prTitleOf, toApiEnvironment } from "../model.ts";

const listQuery = pageQuery.extend({ status: z.enum(["live", "all", ...environmentStatuses]).default("live") });

function statusesOf(status: z.output<typeof listQuery>["status"]) {
  return status === "all" ? environmentStatuses : status === "live" ? liveEnvironmentStatuses : [status];
}

export const listEnvironments = defineRoute({
  method: "get",
  path: "/v1/projects/:id/environments",
  summary: "List a project's preview environments, newest first (live ones unless status=all)",
  tag: "environments",
  access: { kind: "team", minRole: "viewer", resource: "project" },
  params: projectParams,
  query: listQuery,
  response: pageSchema(environmentSchema),
  async handler(c, { params, query }) {
    const page = keyset(environments.createdAt, environments.id, query);
    const statuses = statusesOf(query.status);
    const rows = await dbOf(c)
      .select({ environment: environments, prTitle: prTitleOf, failure: environmentFailure })
      .from(projects)
      .leftJoin(environments, and(eq(environments.projectId, projects.id), inArray(environments.status, [...statuses]), page.where))
      .where(and(eq(projects.id, params.id), inArray(projects.teamId, teamIdsWithRole(c.get("auth"), "viewer"))))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    if (rows.length === 0) throw new ApiError("NOT_FOUND", `project ${params.id} not found`);
    const found = rows.flatMap((r) => (r.environment ? [{ ...r, environment: r.environment }] : []));
    const settings = configOf(c);
    return c.json(page.page(found, (r) => ({ at: r.environment.createdAt, id: r.environment.id }), (r) => toApiEnvironment(r.environment, r.prTitle, settings, r.failure)));
  },
});

export const listTeamEnvironments = defineRoute({
  method: "get",
  path: "/v1/teams/:team/environments",
  summary: "List the preview environments of all the team's projects, newest first (live ones unless status=all)",
  tag: "environments",
  access: { kind: "team", minRole: "viewer", resource: "team" },
  params: teamParams,
  query: listQuery,
  response: pageSchema(environmentSchema),
  async handler(c, { query, team: membership }) {
    const page = keyset(environments.createdAt, environments.id, query);
    const rows = await dbOf(c)
      .select({ environment: environments, prTitle: prTitleOf, failure: environmentFailure })
      .from(environments)
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .where(and(eq(projects.teamId, membership.teamId), inArray(environments.status, [...statusesOf(query.status)]), page.where))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    const settings = configOf(c);
    return c.json(page.page(rows, (r) => ({ at: r.environment.createdAt, id: r.environment.id }), (r) => toApiEnvironment(r.environment, r.prTitle, settings, r.failure)));
  },
});
