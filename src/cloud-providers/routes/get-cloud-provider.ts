import { and, eq, inArray } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { cloudProviders } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { cloudProviderParams, cloudProviderSchema, toApiCloudProvider } from "../model.ts";

export const getCloudProvider = defineRoute({
  method: "get",
  path: "/v1/cloud-providers/:id",
  summary: "Get a cloud account (credentials are summarized, never returned)",
  tag: "cloud-providers",
  access: { kind: "team", minRole: "viewer", resource: "cloud_provider" },
  params: cloudProviderParams,
  response: cloudProviderSchema,
  async handler(c, { params }) {
    const [provider] = await dbOf(c)
      .select()
      .from(cloudProviders)
      .where(and(eq(cloudProviders.id, params.id), inArray(cloudProviders.teamId, teamIdsWithRole(c.get("auth"), "viewer"))));
    if (!provider) throw new ApiError("NOT_FOUND", `cloud provider ${params.id} not found`);
    return c.json(toApiCloudProvider(provider));
  },
});
