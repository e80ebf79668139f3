import { and, eq, inArray, sql } from "drizzle-orm";
import * as z from "zod";
import type { AppContext } from "../../app-env.ts";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { environments, liveEnvironmentStatuses, projects } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { environmentParams } from "../model.ts";

/** Records the action for a live environment of the caller's team (member or higher), in one round trip; 404/403 otherwise. */
async function auditLiveEnvironment(c: AppContext, id: string, action: string): Promise<void> {
  const auth = c.get("auth");
  const db = dbOf(c);
  const live = and(
    eq(environments.id, id),
    inArray(environments.status, liveEnvironmentStatuses),
    sql`${environments.projectId} IN (SELECT id FROM ${projects} WHERE ${inArray(projects.teamId, teamIdsWithRole(auth, "member"))})`,
  );
  const [audit] = await db.batch([
    auditInsertWhere(
      db,
      auth,
      { action, resourceType: "environment", resourceId: id },
      { from: sql`FROM ${environments} WHERE ${live}`, teamId: sql`(SELECT team_id FROM ${projects} WHERE id = ${environments.projectId})`, projectId: sql`${environments.projectId}` },
    ),
  ]);
  if (audit.rowCount === 0) {
    throw await explainMiss(db, auth, {
      what: "live environment",
      id,
      teamOf: sql`SELECT p.team_id FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id WHERE e.id = ${id}`,
      minRole: "member",
    });
  }
}

const accepted = z.object({ status: z.literal("queued") });

export const deleteEnvironment = defineRoute({
  method: "delete",
  path: "/v1/environments/:id",
  summary: "Tear a preview down: its agents are stopped and every VM it used is terminated",
  tag: "environments",
  access: { kind: "team", minRole: "member", resource: "environment" },
  params: environmentParams,
  response: accepted,
  status: 202,
  async handler(c, { params }) {
    await auditLiveEnvironment(c, params.id, "environment.deleted");
    await c.env.JOBS.send({ type: "environment.teardown", environment_id: params.id, reason: "deleted" });
    return c.json({ status: "queued" as const }, 202);
  },
});

export const rebuildEnvironment = defineRoute({
  method: "post",
  path: "/v1/environments/:id/rebuild",
  summary: "Build and deploy the environment's current commit again",
  tag: "environments",
  access: { kind: "team", minRole: "member", resource: "environment" },
  params: environmentParams,
  response: accepted,
  status: 202,
  async handler(c, { params }) {
    await auditLiveEnvironment(c, params.id, "environment.rebuilt");
    await c.env.JOBS.send({
      type: "run.requested",
      environment_id: params.id,
      trigger: "manual_rebuild",
      triggered_by: c.get("auth").user.email,
      dedupe_key: `rebuild:${newId("workflowRun")}`,
    });
    return c.json({ status: "queued" as const }, 202);
  },
});
