import { and, eq } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { githubInstallations } from "../../db/schema.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { installationSchema, repositoriesOf, toApiInstallation } from "../model.ts";

export const listInstallations = defineRoute({
  method: "get",
  path: "/v1/teams/:team/github/installations",
  summary: "The team's GitHub App installations and the repositories each covers (the repositories its projects may name)",
  tag: "github",
  access: { kind: "team", minRole: "viewer", resource: "team" },
  params: teamParams,
  query: pageQuery,
  response: pageSchema(installationSchema),
  async handler(c, { query, team: membership }) {
    const page = keyset(githubInstallations.createdAt, githubInstallations.id, query);
    const rows = await dbOf(c)
      .select({ installation: githubInstallations, repositories: repositoriesOf })
      .from(githubInstallations)
      .where(and(eq(githubInstallations.teamId, membership.teamId), page.where))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    return c.json(page.page(rows, (r) => ({ at: r.installation.createdAt, id: String(r.installation.id) }), (r) => toApiInstallation(r.installation, r.repositories)));
  },
});
