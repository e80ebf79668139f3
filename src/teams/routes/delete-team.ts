import { and, eq, inArray, isNull, notExists, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { environments, githubInstallations, liveEnvironmentStatuses, projects, teams } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { forgetCachedAuth } from "../../auth/auth-cache.ts";

export const deleteTeam = defineRoute({
  method: "delete",
  path: "/v1/teams/:team",
  summary: "Delete a team (soft delete); refused while it has live preview environments",
  tag: "teams",
  access: { kind: "team", minRole: "owner", resource: "team" },
  params: teamParams,
  status: 204,
  async handler(c, { team: membership }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const liveEnvironment = db
      .select({ one: sql`1` })
      .from(environments)
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .where(and(eq(projects.teamId, membership.teamId), inArray(environments.status, liveEnvironmentStatuses)));
    const deletable = and(eq(teams.id, membership.teamId), isNull(teams.deletedAt), notExists(liveEnvironment));
    const [, deleted] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "team.deleted", resourceType: "team", resourceId: membership.teamId },
        { from: sql`FROM ${teams} WHERE ${deletable}`, teamId: sql`${teams.id}`, projectId: sql`NULL` },
      ),
      db.update(teams).set({ deletedAt: new Date() }).where(deletable).returning({ id: teams.id }),
      // A deleted team holds no GitHub App installation: another team may claim it.
      db.execute(sql`UPDATE ${githubInstallations} SET team_id = NULL
                      WHERE team_id = ${membership.teamId} AND EXISTS (SELECT 1 FROM ${teams} WHERE id = ${membership.teamId} AND deleted_at IS NOT NULL)`),
    ]);
    if (deleted.length === 0) throw new ApiError("CONFLICT", "the team still has live preview environments; delete them first");
    forgetCachedAuth();
    return c.body(null, 204);
  },
});
