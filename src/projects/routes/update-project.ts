import { and, eq, inArray, sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { projects } from "../../db/schema.ts";
import { coveringInstallation, notCoveredMessage } from "../../installations/access.ts";
import { explainMiss } from "../../lib/access.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { pushSnapshots, snapshotSelect, toSnapshot, type SnapshotRow } from "../../preview/snapshot.ts";
import { projectConflict, projectFields, projectParams, projectSchema, toApiProject } from "../model.ts";

export const updateProject = defineRoute({
  method: "patch",
  path: "/v1/projects/:id",
  summary: "Change a project's settings",
  tag: "projects",
  access: { kind: "team", minRole: "admin", resource: "project" },
  params: projectParams,
  body: z
    .object({
      name: projectFields.name.optional(),
      slug: projectFields.slug.optional(),
      repo_url: projectFields.repo_url.optional(),
      default_branch: projectFields.default_branch.optional(),
      default_preview_size: projectFields.default_preview_size.optional(),
      cloud_provider_id: projectFields.cloud_provider_id.optional(),
      config: projectFields.config.optional(),
      is_active: z.boolean().optional(),
      fork_previews: projectFields.fork_previews.optional(),
      preview_ttl_hours: projectFields.preview_ttl_hours.optional(),
      preview_access: projectFields.preview_access.optional(),
    })
    .strict()
    .refine((b) => Object.keys(b).length > 0, "send at least one field to change"),
  example: { default_preview_size: "large", fork_previews: false, preview_access: "team" },
  response: projectSchema,
  async handler(c, { params, body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    // A new repository must be covered by one of the team's installations, which the project then records.
    const installation = body.repo_url === undefined ? undefined : coveringInstallation(sql`${projects.teamId}`, body.repo_url);
    const writable = and(
      eq(projects.id, params.id),
      inArray(projects.teamId, teamIdsWithRole(auth, "admin")),
      installation ? sql`${installation} IS NOT NULL` : undefined,
    );
    try {
      // A new access mode reaches the project's live previews at once: their state is read after the update, in the same batch.
      const hostsChanged =
        body.preview_access === undefined
          ? sql`false`
          : sql`e.project_id = ${params.id} AND e.status NOT IN ('terminated', 'reaped') AND p.team_id IN (${db.select({ teamId: projects.teamId }).from(projects).where(writable)})`;
      const [, [project], hosts] = await db.batch([
        auditInsertWhere(
          db,
          auth,
          { action: "project.updated", resourceType: "project", resourceId: params.id, metadata: { changed: Object.keys(body) } },
          { from: sql`FROM ${projects} WHERE ${writable}`, teamId: sql`${projects.teamId}`, projectId: sql`${projects.id}` },
        ),
        db
          .update(projects)
          .set({
            name: body.name,
            slug: body.slug,
            repoUrl: body.repo_url,
            defaultBranch: body.default_branch,
            defaultPreviewSize: body.default_preview_size,
            cloudProviderId: body.cloud_provider_id,
            config: body.config,
            isActive: body.is_active,
            forkPreviews: body.fork_previews,
            previewTtlHours: body.preview_ttl_hours,
            githubInstallationId: installation ? sql`${installation}` : undefined,
            previewAccess: body.preview_access,
          })
          .where(writable)
          .returning(),
        db.execute<SnapshotRow>(snapshotSelect(hostsChanged)),
      ]);
      if (!project) {
        throw await explainMiss(db, auth, {
          what: "project",
          id: params.id,
          teamOf: sql`SELECT team_id FROM ${projects} WHERE id = ${params.id}`,
          minRole: "admin",
          conflict: body.repo_url === undefined ? undefined : {
            when: sql`${coveringInstallation(sql`owner.team_id`, body.repo_url)} IS NULL`,
            code: "UNPROCESSABLE",
            message: notCoveredMessage(body.repo_url, "{team}"),
          },
        });
      }
      await pushSnapshots(c.env, hosts.rows.map(toSnapshot));
      return c.json(toApiProject(project));
    } catch (error) {
      const conflict = projectConflict(databaseErrorOf(error)?.constraint, { slug: body.slug });
      if (conflict) throw new ApiError(conflict.code, conflict.message);
      throw error;
    }
  },
});
