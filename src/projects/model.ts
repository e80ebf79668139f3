import * as z from "zod";
import { machineSizes, previewAccessModes, type projects } from "../db/schema.ts";
import { idOf, iso, slug, timestamp } from "../lib/schemas.ts";

/** `https://github.com/owner/name`, `https://github.com/owner/name.git` or `owner/name` → `https://github.com/owner/name` (lowercase). */
export const repoUrl = z
  .string()
  .trim()
  .max(300)
  .transform((value, ctx) => {
    const match =
      /^(?:https:\/\/github\.com\/)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/([A-Za-z0-9._-]{1,100}?)(?:\.git)?\/?$/.exec(value);
    if (!match || match[2] === "." || match[2] === "..") {
      ctx.addIssue({ code: "custom", message: "must be https://github.com/<owner>/<repo> or <owner>/<repo>" });
      return z.NEVER;
    }
    return `https://github.com/${match[1]}/${match[2]}`.toLowerCase();
  });

export const projectFields = {
  name: z.string().trim().min(1).max(100),
  slug,
  repo_url: repoUrl,
  default_branch: z.string().min(1).max(255).regex(/^[^\s~^:?*[\\]+$/, "must be a git branch name"),
  default_preview_size: z.enum(machineSizes),
  cloud_provider_id: idOf("cp").nullable(),
  config: z.record(z.string(), z.unknown()).refine((v) => JSON.stringify(v).length <= 16_384, "must be at most 16 KiB of JSON"),
  fork_previews: z.boolean().describe("build previews for pull requests from forks (they never receive secrets)"),
  preview_ttl_hours: z.number().int().min(1).max(720),
  preview_access: z
    .enum(previewAccessModes)
    .describe("who may open preview URLs: team (members, after signing in with GitHub; the default) or public (anyone with the link)"),
};

export const projectParams = z.object({ id: idOf("prj") });

export const projectSchema = z.object({
  id: z.string(),
  team_id: z.string(),
  slug: z.string(),
  name: z.string(),
  repo_url: z.string(),
  repo_provider: z.string(),
  default_branch: z.string(),
  default_preview_size: z.enum(machineSizes),
  cloud_provider_id: z.string().nullable(),
  config: z.record(z.string(), z.unknown()),
  is_active: z.boolean(),
  fork_previews: z.boolean(),
  preview_ttl_hours: z.number().int(),
  preview_access: z.enum(previewAccessModes),
  created_at: timestamp,
  updated_at: timestamp,
});

export function toApiProject(row: typeof projects.$inferSelect): z.infer<typeof projectSchema> {
  return {
    id: row.id,
    team_id: row.teamId,
    slug: row.slug,
    name: row.name,
    repo_url: row.repoUrl,
    repo_provider: row.repoProvider,
    default_branch: row.defaultBranch,
    default_preview_size: row.defaultPreviewSize,
    cloud_provider_id: row.cloudProviderId,
    config: row.config,
    is_active: row.isActive,
    fork_previews: row.forkPreviews,
    preview_ttl_hours: row.previewTtlHours,
    preview_access: row.previewAccess,
    created_at: iso(row.createdAt)!,
    updated_at: iso(row.updatedAt)!,
  };
}

/** Database errors a project write can hit, as API errors. */
export function projectConflict(constraint: string | undefined, values: { slug?: string }) {
  if (constraint === "projects_team_slug_key") return { code: "CONFLICT" as const, message: `the slug "${values.slug}" is taken in this team` };
  if (constraint === "projects_cloud_provider_same_team" || constraint === "projects_cloud_provider_id_cloud_providers_id_fk") {
    return { code: "UNPROCESSABLE" as const, message: "cloud_provider_id does not name a cloud provider of this team" };
  }
  return undefined;
}
