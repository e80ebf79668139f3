import { and, eq, inArray } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { projectRegistries, projects } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { projectParams } from "../../projects/model.ts";
import { registrySchema, toApiRegistry } from "../model.ts";

export const getRegistry = defineRoute({
  method: "get",
  path: "/v1/projects/:id/registry",
  summary: "The project's container registry (404 when it has none: default mode, images are built on the preview VM); the password is never returned",
  tag: "projects",
  access: { kind: "team", minRole: "viewer", resource: "project" },
  params: projectParams,
  response: registrySchema,
  async handler(c, { params }) {
    const rows = await dbOf(c)
      .select({ registry: projectRegistries })
      .from(projects)
      .leftJoin(projectRegistries, eq(projectRegistries.projectId, projects.id))
      .where(and(eq(projects.id, params.id), inArray(projects.teamId, teamIdsWithRole(c.get("auth"), "viewer"))));
    if (rows.length === 0) throw new ApiError("NOT_FOUND", `project ${params.id} not found`);
    if (!rows[0]!.registry) throw new ApiError("NOT_FOUND", `project ${params.id} has no registry (default mode: images are built on the preview VM)`);
    return c.json(toApiRegistry(rows[0]!.registry));
  },
});
