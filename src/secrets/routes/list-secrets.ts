import { and, eq, inArray } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { projects, secrets } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { projectParams } from "../../projects/model.ts";
import { secretColumns, secretSchema, toApiSecret } from "../model.ts";

export const listSecrets = defineRoute({
  method: "get",
  path: "/v1/projects/:id/secrets",
  summary: "List a project's secrets (keys and settings; values are write-only)",
  tag: "secrets",
  access: { kind: "team", minRole: "viewer", resource: "project" },
  params: projectParams,
  query: pageQuery,
  response: pageSchema(secretSchema),
  async handler(c, { params, query }) {
    const page = keyset(secrets.createdAt, secrets.id, query);
    // One round trip answers both "is the project yours?" (any row at all) and "its secrets" (the joined ones).
    const rows = await dbOf(c)
      .select({ secret: secretColumns })
      .from(projects)
      .leftJoin(secrets, and(eq(secrets.projectId, projects.id), page.where))
      .where(and(eq(projects.id, params.id), inArray(projects.teamId, teamIdsWithRole(c.get("auth"), "viewer"))))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    if (rows.length === 0) throw new ApiError("NOT_FOUND", `project ${params.id} not found`);
    const found = rows.flatMap((r) => (r.secret ? [r.secret] : []));
    return c.json(page.page(found, (r) => ({ at: r.createdAt, id: r.id }), toApiSecret));
  },
});
