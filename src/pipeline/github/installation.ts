import * as z from "zod";

/**
 * GitHub's installation and repository objects, as the REST API (GET /app/installations/{id}, GET
 * /installation/repositories) and the `installation` / `installation_repositories` webhooks send them: one reading of
 * the fields Stagely keeps.
 */

export interface InstallationInfo {
  id: number;
  accountLogin: string;
  accountType: "User" | "Organization" | "Enterprise";
  repositorySelection: "all" | "selected";
  permissions: Record<string, string>;
  /** ISO 8601, or null when the installation is active. */
  suspendedAt: string | null;
}

export interface InstallationRepository {
  id: number;
  /** `owner/name`, lowercased. */
  fullName: string;
}

/** A user or organization has a login; an enterprise account has a slug instead. */
const account = z.union([
  z.object({ login: z.string().min(1), type: z.enum(["User", "Organization"]) }),
  z.object({ slug: z.string().min(1) }).transform((a) => ({ login: a.slug, type: "Enterprise" as const })),
]);

export const installationObject = z
  .object({
    id: z.number().int().positive(),
    account,
    repository_selection: z.enum(["all", "selected"]),
    permissions: z.record(z.string(), z.string()).default({}),
    suspended_at: z.string().nullish(),
  })
  .transform(
    (i): InstallationInfo => ({
      id: i.id,
      accountLogin: i.account.login,
      accountType: i.account.type,
      repositorySelection: i.repository_selection,
      permissions: i.permissions,
      suspendedAt: i.suspended_at ?? null,
    }),
  );

export const repositoryObject = z
  .object({ id: z.number().int().positive(), full_name: z.string().regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/) })
  .transform((r): InstallationRepository => ({ id: r.id, fullName: r.full_name.toLowerCase() }));
