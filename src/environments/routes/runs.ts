import { and, asc, eq, getTableColumns, inArray, sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { buildJobs, environments, projects, workflowRuns } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { ApiError } from "../../lib/errors.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { pipelineContext } from "../../pipeline/context.ts";
import { retireBuilders } from "../../pipeline/effects.ts";
import type { SupersededJob } from "../../pipeline/runs.ts";
import { environmentParams, jobSchema, runParams, runSchema, toApiJob, toApiRun } from "../model.ts";

export const listRuns = defineRoute({
  method: "get",
  path: "/v1/environments/:id/runs",
  summary: "An environment's workflow runs, newest first",
  tag: "runs",
  access: { kind: "team", minRole: "viewer", resource: "environment" },
  params: environmentParams,
  query: pageQuery,
  response: pageSchema(runSchema),
  async handler(c, { params, query }) {
    const page = keyset(workflowRuns.createdAt, workflowRuns.id, query);
    // One round trip: the environment (is it yours?) left-joined to the page of its runs.
    const rows = await dbOf(c)
      .select({ run: workflowRuns })
      .from(environments)
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .leftJoin(workflowRuns, and(eq(workflowRuns.environmentId, environments.id), page.where))
      .where(and(eq(environments.id, params.id), inArray(projects.teamId, teamIdsWithRole(c.get("auth"), "viewer"))))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    if (rows.length === 0) throw new ApiError("NOT_FOUND", `environment ${params.id} not found`);
    const runs = rows.flatMap((r) => (r.run ? [r.run] : []));
    return c.json(page.page(runs, (r) => ({ at: r.createdAt, id: r.id }), toApiRun));
  },
});

export const getRun = defineRoute({
  method: "get",
  path: "/v1/runs/:id",
  summary: "A workflow run with its build jobs",
  tag: "runs",
  access: { kind: "team", minRole: "viewer", resource: "run" },
  params: runParams,
  response: runSchema.extend({ jobs: z.array(jobSchema) }),
  async handler(c, { params }) {
    const rows = await dbOf(c)
      .select({ run: workflowRuns, job: buildJobs })
      .from(workflowRuns)
      .innerJoin(environments, eq(environments.id, workflowRuns.environmentId))
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .leftJoin(buildJobs, eq(buildJobs.workflowRunId, workflowRuns.id))
      .where(and(eq(workflowRuns.id, params.id), inArray(projects.teamId, teamIdsWithRole(c.get("auth"), "viewer"))))
      .orderBy(asc(buildJobs.name));
    const run = rows[0]?.run;
    if (!run) throw new ApiError("NOT_FOUND", `run ${params.id} not found`);
    return c.json({ ...toApiRun(run), jobs: rows.flatMap((r) => (r.job ? [toApiJob(r.job)] : [])) });
  },
});

export const cancelRun = defineRoute({
  method: "post",
  path: "/v1/runs/:id/cancel",
  summary: "Cancel a run that is still going; its builders are terminated",
  tag: "runs",
  access: { kind: "team", minRole: "member", resource: "run" },
  params: runParams,
  response: runSchema,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const teamOfRun = sql`(SELECT p.team_id FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id WHERE e.id = ${workflowRuns.environmentId})`;
    const cancellable = and(
      eq(workflowRuns.id, params.id),
      inArray(workflowRuns.status, ["pending", "building", "deploying", "testing"]),
      sql`${teamOfRun} IN (${sql.join([...teamIdsWithRole(auth, "member"), ""].map((id) => sql`${id}`), sql`, `)})`,
    );
    const [, cancelled, jobs] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "run.cancelled", resourceType: "workflow_run", resourceId: params.id },
        { from: sql`FROM ${workflowRuns} WHERE ${cancellable}`, teamId: teamOfRun, projectId: sql`(SELECT project_id FROM ${environments} WHERE id = ${workflowRuns.environmentId})` },
      ),
      db
        .update(workflowRuns)
        .set({ status: "cancelled", result: "cancelled", completedAt: new Date(), errorMessage: `cancelled by ${auth.user.email}` })
        .where(cancellable)
        .returning({ ...getTableColumns(workflowRuns), teamId: sql<string>`${teamOfRun}` }),
      db.execute<SupersededJob & { team_id: string }>(sql`
        UPDATE ${buildJobs} SET status = 'cancelled', completed_at = now(), error_message = 'the run was cancelled'
         WHERE workflow_run_id = ${params.id} AND status IN ('queued', 'provisioning', 'running')
           AND EXISTS (SELECT 1 FROM ${workflowRuns} WHERE id = ${params.id} AND status = 'cancelled')
        RETURNING id, vm_id, agent_id, cloud_provider_id`),
    ]);
    const run = cancelled[0];
    if (!run) {
      throw await explainMiss(db, auth, {
        what: "run",
        id: params.id,
        teamOf: sql`SELECT p.team_id FROM ${workflowRuns} r JOIN ${environments} e ON e.id = r.environment_id JOIN ${projects} p ON p.id = e.project_id WHERE r.id = ${params.id}`,
        minRole: "member",
        conflict: { when: sql`true`, message: `run ${params.id} is already over` },
      });
    }
    const ctx = await pipelineContext(c.env, c.get("logger"));
    await retireBuilders(ctx, jobs.rows, "the run was cancelled");
    await ctx.send([{ type: "team.schedule", team_id: run.teamId }]);
    return c.json(toApiRun(run));
  },
});
