import { and, eq, inArray } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { projects } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { projectParams, projectSchema, toApiProject } from "../model.ts";

export const getProject = defineRoute({
  method: "get",
  path: "/v1/projects/:id",
  summary: "Get a project",
  tag: "projects",
  access: { kind: "team", minRole: "viewer", resource: "project" },
  params: projectParams,
  response: projectSchema,
  async handler(c, { params }) {
    const [project] = await dbOf(c)
      .select()
      .from(projects)
      .where(and(eq(projects.id, params.id), inArray(projects.teamId, teamIdsWithRole(c.get("auth"), "viewer"))));
    if (!project) throw new ApiError("NOT_FOUND", `project ${params.id} not found`);
    return c.json(toApiProject(project));
  },
});
