import { and, eq, inArray, sql } from "drizzle-orm";
import { configOf, dbOf, keyringOf } from "../../app-env.ts";
import { auditInsert } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { cloudProviders } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { defineRoute } from "../../lib/route.ts";
import { validateProviderCredentials } from "../../providers/factory.ts";
import { cloudProviderParams, cloudProviderSchema, toApiCloudProvider } from "../model.ts";

export const validateCloudProvider = defineRoute({
  method: "post",
  path: "/v1/cloud-providers/:id/validate",
  summary: "Check the stored credentials with a cheap read-only call to the cloud; records the outcome",
  tag: "cloud-providers",
  access: { kind: "team", minRole: "admin", resource: "cloud_provider" },
  params: cloudProviderParams,
  response: cloudProviderSchema,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const mine = and(eq(cloudProviders.id, params.id), inArray(cloudProviders.teamId, teamIdsWithRole(auth, "admin")));
    const [row] = await db.select().from(cloudProviders).where(mine);
    if (!row) {
      throw await explainMiss(db, auth, { what: "cloud provider", id: params.id, teamOf: sql`SELECT team_id FROM ${cloudProviders} WHERE id = ${params.id}`, minRole: "admin" });
    }
    const outcome = await validateProviderCredentials(row, await keyringOf(c), { stage: configOf(c).STAGELY_ENV });
    const error = outcome.ok ? null : outcome.error;
    const [[updated]] = await db.batch([
      db.update(cloudProviders).set({ lastValidatedAt: new Date(), validationError: error }).where(mine).returning(),
      auditInsert(db, auth, {
        action: "cloud_provider.validated",
        resourceType: "cloud_provider",
        resourceId: row.id,
        teamId: row.teamId,
        metadata: { ok: outcome.ok },
      }),
    ]);
    return c.json(toApiCloudProvider(updated ?? row));
  },
});
