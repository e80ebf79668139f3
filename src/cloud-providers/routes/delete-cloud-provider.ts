import { and, eq, inArray, or, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { buildJobs, cloudProviders, environments, liveEnvironmentStatuses } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { defineRoute } from "../../lib/route.ts";
import { cloudProviderParams } from "../model.ts";

export const deleteCloudProvider = defineRoute({
  method: "delete",
  path: "/v1/cloud-providers/:id",
  summary: "Remove a cloud account; refused while VMs it created are still in use (they could not be torn down without it)",
  tag: "cloud-providers",
  access: { kind: "team", minRole: "admin", resource: "cloud_provider" },
  params: cloudProviderParams,
  status: 204,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const inUse = or(
      sql`EXISTS (${db.select({ one: sql`1` }).from(environments).where(and(eq(environments.cloudProviderId, params.id), inArray(environments.status, liveEnvironmentStatuses)))})`,
      sql`EXISTS (${db.select({ one: sql`1` }).from(buildJobs).where(and(eq(buildJobs.cloudProviderId, params.id), inArray(buildJobs.status, ["queued", "provisioning", "running"])))})`,
    )!;
    const deletable = and(eq(cloudProviders.id, params.id), inArray(cloudProviders.teamId, teamIdsWithRole(auth, "admin")), sql`NOT (${inUse})`);
    const [, deleted] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "cloud_provider.deleted", resourceType: "cloud_provider", resourceId: params.id },
        { from: sql`FROM ${cloudProviders} WHERE ${deletable}`, teamId: sql`${cloudProviders.teamId}`, projectId: sql`NULL` },
      ),
      db.delete(cloudProviders).where(deletable).returning({ id: cloudProviders.id }),
    ]);
    if (deleted.length === 0) {
      throw await explainMiss(db, auth, {
        what: "cloud provider",
        id: params.id,
        teamOf: sql`SELECT team_id FROM ${cloudProviders} WHERE id = ${params.id}`,
        minRole: "admin",
        conflict: { when: inUse, message: "live environments or running builds still use this cloud account; delete them first" },
      });
    }
    return c.body(null, 204);
  },
});
