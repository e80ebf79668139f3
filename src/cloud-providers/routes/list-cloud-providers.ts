import { and, eq } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { cloudProviders } from "../../db/schema.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { cloudProviderSchema, toApiCloudProvider } from "../model.ts";

export const listCloudProviders = defineRoute({
  method: "get",
  path: "/v1/teams/:team/cloud-providers",
  summary: "List a team's cloud accounts",
  tag: "cloud-providers",
  access: { kind: "team", minRole: "viewer", resource: "team" },
  params: teamParams,
  query: pageQuery,
  response: pageSchema(cloudProviderSchema),
  async handler(c, { query, team: membership }) {
    const page = keyset(cloudProviders.createdAt, cloudProviders.id, query);
    const rows = await dbOf(c)
      .select()
      .from(cloudProviders)
      .where(and(eq(cloudProviders.teamId, membership.teamId), page.where))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    return c.json(page.page(rows, (r) => ({ at: r.createdAt, id: r.id }), toApiCloudProvider));
  },
});
