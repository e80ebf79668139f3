import { and, eq, inArray, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { environments, projects, secrets } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { defineRoute } from "../../lib/route.ts";
import { secretParams } from "../model.ts";
import { redeployReadyEnvironments } from "../redeploy.ts";

export const deleteSecret = defineRoute({
  method: "delete",
  path: "/v1/secrets/:id",
  summary: "Delete a secret",
  tag: "secrets",
  access: { kind: "team", minRole: "admin", resource: "secret" },
  params: secretParams,
  status: 204,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const ownedProjects = sql`SELECT id FROM ${projects} WHERE ${inArray(projects.teamId, teamIdsWithRole(auth, "admin"))}`;
    const deletable = and(eq(secrets.id, params.id), sql`${secrets.projectId} IN (${ownedProjects})`);
    const [, , ready, deleted] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "secret.deleted", resourceType: "secret", resourceId: params.id },
        { from: sql`FROM ${secrets} WHERE ${deletable}`, teamId: sql`(SELECT team_id FROM ${projects} WHERE id = ${secrets.projectId})`, projectId: sql`${secrets.projectId}` },
      ),
      db.execute(sql`UPDATE ${projects} SET secrets_changed_at = now() WHERE id IN (SELECT project_id FROM ${secrets} WHERE ${deletable})`),
      db.execute<{ id: string }>(sql`
        SELECT e.id FROM ${environments} e WHERE e.status = 'ready' AND e.project_id IN (SELECT project_id FROM ${secrets} WHERE ${deletable})`),
      db.delete(secrets).where(deletable).returning({ id: secrets.id }),
    ]);
    if (deleted.length === 0) {
      throw await explainMiss(db, auth, {
        what: "secret",
        id: params.id,
        teamOf: sql`SELECT p.team_id FROM ${secrets} s JOIN ${projects} p ON p.id = s.project_id WHERE s.id = ${params.id}`,
        minRole: "admin",
      });
    }
    await redeployReadyEnvironments(c, ready.rows);
    return c.body(null, 204);
  },
});
