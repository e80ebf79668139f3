import { eq, sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { projects } from "../../db/schema.ts";
import { coveringInstallation, notCoveredMessage } from "../../installations/access.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { slug, slugify, teamParams } from "../../lib/schemas.ts";
import { projectConflict, projectFields, projectSchema, toApiProject } from "../model.ts";

export const createProject = defineRoute({
  method: "post",
  path: "/v1/teams/:team/projects",
  summary: "Connect a GitHub repository as a project (one the team's GitHub App installations cover)",
  tag: "projects",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamParams,
  body: z
    .object({
      name: projectFields.name,
      slug: projectFields.slug.optional().describe("defaults to the name made into a slug"),
      repo_url: projectFields.repo_url,
      default_branch: projectFields.default_branch.default("main"),
      default_preview_size: projectFields.default_preview_size.default("medium"),
      cloud_provider_id: projectFields.cloud_provider_id.default(null),
      config: projectFields.config.default({}),
      fork_previews: projectFields.fork_previews.default(false),
      preview_ttl_hours: projectFields.preview_ttl_hours.default(24),
      preview_access: projectFields.preview_access.default("team"),
    })
    .strict(),
  example: { name: "Web", repo_url: "acme/web", default_branch: "main" },
  response: projectSchema,
  status: 201,
  async handler(c, { params, body, team: membership }) {
    const auth = c.get("auth");
    const projectSlug = body.slug ?? slugify(body.name);
    if (!slug.safeParse(projectSlug).success) {
      throw new ApiError("VALIDATION_FAILED", "invalid body: slug: cannot be derived from this name; pass a slug", {
        issues: [{ path: "slug", message: "required for this name" }],
      });
    }
    const db = dbOf(c);
    const id = newId("project");
    // Written only when one of the team's installations covers the repository; the project records which.
    const installation = coveringInstallation(membership.teamId, body.repo_url);
    try {
      const [, , [project]] = await db.batch([
        db.execute(sql`
          INSERT INTO ${projects} (id, team_id, slug, name, repo_url, default_branch, default_preview_size, cloud_provider_id, config,
                                   fork_previews, preview_ttl_hours, preview_access, github_installation_id)
          SELECT ${id}, ${membership.teamId}, ${projectSlug}, ${body.name}, ${body.repo_url}, ${body.default_branch}, ${body.default_preview_size},
                 ${body.cloud_provider_id}, ${JSON.stringify(body.config)}::jsonb, ${body.fork_previews}, ${body.preview_ttl_hours}, ${body.preview_access}, installation.id
            FROM (SELECT ${installation} AS id) AS installation
           WHERE installation.id IS NOT NULL`),
        auditInsertWhere(
          db,
          auth,
          { action: "project.created", resourceType: "project", resourceId: id, metadata: { slug: projectSlug, repo_url: body.repo_url } },
          { from: sql`FROM ${projects} WHERE ${projects.id} = ${id}`, teamId: sql`${projects.teamId}`, projectId: sql`${projects.id}` },
        ),
        db.select().from(projects).where(eq(projects.id, id)),
      ]);
      if (!project) throw new ApiError("UNPROCESSABLE", notCoveredMessage(body.repo_url, params.team));
      return c.json(toApiProject(project), 201);
    } catch (error) {
      const conflict = projectConflict(databaseErrorOf(error)?.constraint, { slug: projectSlug });
      if (conflict) throw new ApiError(conflict.code, conflict.message);
      throw error;
    }
  },
});
