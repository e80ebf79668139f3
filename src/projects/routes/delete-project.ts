import { and, eq, inArray, notExists, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { environments, liveEnvironmentStatuses, projects } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { defineRoute } from "../../lib/route.ts";
import { projectParams } from "../model.ts";

export const deleteProject = defineRoute({
  method: "delete",
  path: "/v1/projects/:id",
  summary: "Delete a project and its history; refused while it has live preview environments",
  tag: "projects",
  access: { kind: "team", minRole: "admin", resource: "project" },
  params: projectParams,
  status: 204,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const liveEnvironment = db
      .select({ one: sql`1` })
      .from(environments)
      .where(and(eq(environments.projectId, params.id), inArray(environments.status, liveEnvironmentStatuses)));
    const deletable = and(eq(projects.id, params.id), inArray(projects.teamId, teamIdsWithRole(auth, "admin")), notExists(liveEnvironment));
    const [, deleted] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "project.deleted", resourceType: "project", resourceId: params.id },
        { from: sql`FROM ${projects} WHERE ${deletable}`, teamId: sql`${projects.teamId}`, projectId: sql`${projects.id}` },
      ),
      db.delete(projects).where(deletable).returning({ id: projects.id }),
    ]);
    if (deleted.length === 0) {
      throw await explainMiss(db, auth, {
        what: "project",
        id: params.id,
        teamOf: sql`SELECT team_id FROM ${projects} WHERE id = ${params.id}`,
        minRole: "admin",
        conflict: { when: sql`EXISTS (${liveEnvironment})`, message: "the project has live preview environments; delete them first" },
      });
    }
    return c.body(null, 204);
  },
});
