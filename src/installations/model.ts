import { sql } from "drizzle-orm";
import * as z from "zod";
import { githubInstallationRepositories, githubInstallations, installationAccountTypes, repositorySelections } from "../db/schema.ts";
import { iso, teamRef, timestamp } from "../lib/schemas.ts";

export const installationParams = z.object({
  team: teamRef,
  installation: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).describe("GitHub's installation id"),
});

const repositorySchema = z.object({ id: z.number().int(), full_name: z.string() });

export const installationSchema = z.object({
  id: z.number().int().describe("GitHub's installation id"),
  account_login: z.string().describe("the GitHub user or organization the App is installed on"),
  account_type: z.enum(installationAccountTypes),
  repository_selection: z.enum(repositorySelections),
  permissions: z.record(z.string(), z.string()),
  suspended_at: timestamp.nullable().describe("set while the installation is suspended on GitHub: nothing is built"),
  claimed_by: z.string().nullable().describe("the user whose install connected it to this team"),
  repositories: z.array(repositorySchema).describe("what the installation can access: the repositories this team's projects may name"),
  created_at: timestamp,
  updated_at: timestamp,
});

type Repository = z.infer<typeof repositorySchema>;

/** The installation's repositories as a JSON array, ordered by name (a select field). */
export const repositoriesOf = sql<Repository[]>`coalesce((
  SELECT json_agg(json_build_object('id', r.repository_id, 'full_name', r.full_name) ORDER BY r.full_name)
    FROM ${githubInstallationRepositories} r WHERE r.installation_id = ${githubInstallations.id}), '[]'::json)`;

export function toApiInstallation(row: typeof githubInstallations.$inferSelect, repositories: Repository[]): z.infer<typeof installationSchema> {
  return {
    id: row.id,
    account_login: row.accountLogin,
    account_type: row.accountType,
    repository_selection: row.repositorySelection,
    permissions: row.permissions,
    suspended_at: iso(row.suspendedAt),
    claimed_by: row.claimedBy,
    repositories: repositories.map((r) => ({ id: Number(r.id), full_name: r.full_name })),
    created_at: iso(row.createdAt)!,
    updated_at: iso(row.updatedAt)!,
  };
}
