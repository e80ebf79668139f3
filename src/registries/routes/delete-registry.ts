import { and, eq, inArray, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { projectRegistries, projects } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { defineRoute } from "../../lib/route.ts";
import { projectParams } from "../../projects/model.ts";

export const deleteRegistry = defineRoute({
  method: "delete",
  path: "/v1/projects/:id/registry",
  summary: "Remove the project's registry: later runs build on the preview VM (default mode)",
  tag: "projects",
  access: { kind: "team", minRole: "admin", resource: "project" },
  params: projectParams,
  status: 204,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const deletable = and(
      eq(projectRegistries.projectId, params.id),
      sql`${projectRegistries.projectId} IN (SELECT id FROM ${projects} WHERE ${inArray(projects.teamId, teamIdsWithRole(auth, "admin"))})`,
    );
    const [, deleted] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "project.registry_removed", resourceType: "project", resourceId: params.id },
        { from: sql`FROM ${projectRegistries} WHERE ${deletable}`, teamId: sql`(SELECT team_id FROM ${projects} WHERE id = ${projectRegistries.projectId})`, projectId: sql`${projectRegistries.projectId}` },
      ),
      db.delete(projectRegistries).where(deletable).returning({ id: projectRegistries.projectId }),
    ]);
    if (deleted.length === 0) {
      // Not the caller's (404), too low a role (403), or the project has no registry (404).
      throw await explainMiss(db, auth, { what: "registry of project", id: params.id, teamOf: sql`SELECT team_id FROM ${projects} WHERE id = ${params.id}`, minRole: "admin" });
    }
    return c.body(null, 204);
  },
});
