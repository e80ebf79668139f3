import { and, eq, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { githubInstallations } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { installationParams } from "../model.ts";
import { unbindProjects } from "../records.ts";

export const disconnectInstallation = defineRoute({
  method: "delete",
  path: "/v1/teams/:team/github/installations/:installation",
  summary:
    "Disconnect a GitHub App installation from the team: its webhooks and tokens no longer serve the team's projects (uninstall the App on GitHub to remove it there)",
  tag: "github",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: installationParams,
  status: 204,
  async handler(c, { params, team: membership }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const ours = and(eq(githubInstallations.id, params.installation), eq(githubInstallations.teamId, membership.teamId));
    const [, , released] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "github_installation.disconnected", resourceType: "github_installation", resourceId: String(params.installation) },
        { from: sql`FROM ${githubInstallations} WHERE ${ours}`, teamId: sql`${githubInstallations.teamId}`, projectId: sql`NULL` },
      ),
      unbindProjects(db, params.installation, membership.teamId),
      db.update(githubInstallations).set({ teamId: null, claimedBy: null }).where(ours).returning({ id: githubInstallations.id }),
    ]);
    if (released.length === 0) throw new ApiError("NOT_FOUND", `GitHub App installation ${params.installation} not found in team ${membership.slug}`);
    return c.body(null, 204);
  },
});
