import { and, eq, inArray, sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { environments, liveEnvironmentStatuses, projects, pullRequests } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { projectParams } from "../../projects/model.ts";

export const createEnvironment = defineRoute({
  method: "post",
  path: "/v1/projects/:id/environments",
  summary:
    "Preview an open pull request's head commit now (as if it had just been opened); builds asynchronously. The pull request must be known from GitHub's webhooks; whether it comes from a fork is what GitHub said",
  tag: "environments",
  access: { kind: "team", minRole: "member", resource: "project" },
  params: projectParams,
  body: z
    .object({
      pr_number: z.number().int().positive(),
      branch: z
        .string()
        .min(1)
        .max(255)
        .regex(/^[^\s~^:?*[\\]+$/, "must be a git branch name")
        .optional()
        .describe("if given, must be the pull request's head branch"),
      commit_hash: z
        .string()
        .regex(/^[0-9a-f]{40}$/, "must be a full 40-character commit SHA")
        .optional()
        .describe("if given, must be the pull request's head commit (the default)"),
    })
    .strict(),
  example: { pr_number: 42, branch: "feature/login", commit_hash: "0123456789abcdef0123456789abcdef01234567" },
  response: z.object({
    status: z.literal("queued"),
    environment: z.object({ id: z.string(), url: z.string().describe("GET it to follow the environment (the pull request's live one, or the one this makes)") }),
    run: z.object({ id: z.string(), url: z.string().describe("GET it to follow the run; it answers 404 for the moment until the queue starts it") }),
  }),
  status: 202,
  async handler(c, { params, body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const runId = newId("workflowRun");
    const allowed = and(eq(projects.id, params.id), inArray(projects.teamId, teamIdsWithRole(auth, "member")), eq(projects.isActive, true));
    // Only the head GitHub last reported is built: any other commit could be anyone's code (a fork's included).
    const atHead = and(
      eq(pullRequests.state, "open"),
      body.commit_hash ? eq(pullRequests.headSha, body.commit_hash) : undefined,
      body.branch ? eq(pullRequests.headRef, body.branch) : undefined,
    );
    const [audit, [pullRequest], [live]] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "environment.requested", resourceType: "project", resourceId: params.id, metadata: { pr_number: body.pr_number, commit_hash: body.commit_hash ?? null } },
        {
          from: sql`FROM ${projects} JOIN ${pullRequests} ON ${pullRequests.projectId} = ${projects.id} AND ${pullRequests.prNumber} = ${body.pr_number} WHERE ${allowed} AND ${atHead}`,
          teamId: sql`${projects.teamId}`,
          projectId: sql`${projects.id}`,
        },
      ),
      db
        .select({ state: pullRequests.state, headSha: pullRequests.headSha, headRef: pullRequests.headRef })
        .from(pullRequests)
        .innerJoin(projects, eq(projects.id, pullRequests.projectId))
        .where(and(allowed, eq(pullRequests.prNumber, body.pr_number))),
      db
        .select({ id: environments.id })
        .from(environments)
        .where(and(eq(environments.projectId, params.id), eq(environments.prNumber, body.pr_number), inArray(environments.status, liveEnvironmentStatuses))),
    ]);
    if (audit.rowCount === 0) {
      if (pullRequest) throw new ApiError("UNPROCESSABLE", whyNotHead(body, pullRequest));
      throw await explainMiss(db, auth, {
        what: "project",
        id: params.id,
        teamOf: sql`SELECT team_id FROM ${projects} WHERE id = ${params.id}`,
        minRole: "member",
        conflict: {
          when: sql`NOT EXISTS (SELECT 1 FROM ${pullRequests} WHERE project_id = ${params.id} AND pr_number = ${body.pr_number})`,
          code: "UNPROCESSABLE",
          message: `pull request #${body.pr_number} is not known for this project: Stagely previews pull requests GitHub has told it about (through the App's webhooks)`,
        },
      });
    }
    const environmentId = live?.id ?? newId("environment");
    await c.env.JOBS.send({
      type: "preview.requested",
      project_id: params.id,
      pr_number: body.pr_number,
      branch: pullRequest!.headRef,
      commit_hash: pullRequest!.headSha,
      triggered_by: auth.user.email,
      dedupe_key: `api:${runId}`,
      run_id: runId,
      // The pull request's live environment takes the run; otherwise the one made for it has this id.
      ...(live ? {} : { environment_id: environmentId }),
    });
    return c.json({ status: "queued" as const, environment: { id: environmentId, url: `/v1/environments/${environmentId}` }, run: { id: runId, url: `/v1/runs/${runId}` } }, 202);
  },
});

function whyNotHead(body: { pr_number: number; branch?: string; commit_hash?: string }, pullRequest: { state: string; headSha: string; headRef: string }): string {
  if (pullRequest.state !== "open") return `pull request #${body.pr_number} is closed`;
  if (body.commit_hash && body.commit_hash !== pullRequest.headSha) {
    return `commit_hash must be the head of pull request #${body.pr_number} as GitHub last reported it (${pullRequest.headSha}); leave it out to preview the head`;
  }
  return `branch must be the head branch of pull request #${body.pr_number} (${pullRequest.headRef}); leave it out to preview the head`;
}
