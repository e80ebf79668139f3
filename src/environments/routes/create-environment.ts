import { and, eq, inArray, sql } from "drizzle-orm";
import { z } from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { projects } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { projectParams } from "../../projects/model.ts";

export const createEnvironment = defineRoute({
  method: "post",
  path: "/v1/projects/:id/environments",
  summary: "Preview a pull request's branch at a commit now (as if it had just been opened); builds asynchronously",
  tag: "environments",
  access: { kind: "team", minRole: "member", resource: "project" },
  params: projectParams,
  body: z
    .object({
      pr_number: z.number().int().positive(),
      branch: z.string().min(1).max(255).regex(/^[^\s~^:?*[\\]+$/, "must be a git branch name"),
      commit_hash: z.string().regex(/^[0-9a-f]{40}$/, "must be a full 40-character commit SHA"),
    })
    .strict(),
  example: { pr_number: 42, branch: "feature/login", commit_hash: "0123456789abcdef0123456789abcdef01234567" },
  response: z.object({ status: z.literal("queued"), request_id: z.string() }),
  status: 202,
  async handler(c, { params, body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const requestId = newId("workflowRun");
    const allowed = and(eq(projects.id, params.id), inArray(projects.teamId, teamIdsWithRole(auth, "member")), eq(projects.isActive, true));
    const [audit] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "environment.requested", resourceType: "project", resourceId: params.id, metadata: { pr_number: body.pr_number, commit_hash: body.commit_hash } },
        { from: sql`FROM ${projects} WHERE ${allowed}`, teamId: sql`${projects.teamId}`, projectId: sql`${projects.id}` },
      ),
    ]);
    if (audit.rowCount === 0) {
      throw await explainMiss(db, auth, { what: "project", id: params.id, teamOf: sql`SELECT team_id FROM ${projects} WHERE id = ${params.id}`, minRole: "member" });
    }
    await c.env.JOBS.send({
      type: "preview.requested",
      project_id: params.id,
      pr_number: body.pr_number,
      branch: body.branch,
      commit_hash: body.commit_hash,
      triggered_by: auth.user.email,
      dedupe_key: `api:${requestId}`,
    });
    return c.json({ status: "queued" as const, request_id: requestId }, 202);
  },
});
