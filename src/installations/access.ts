import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { githubInstallationRepositories, githubInstallations } from "../db/schema.ts";
import type { RepoRef } from "../pipeline/github-app.ts";

export type RepositoryAccess = { ok: true; repo: RepoRef } | { ok: false; reason: string };

interface ProjectRepository {
  teamId: string;
  repoUrl: string;
  githubInstallationId: number | null;
}

/**
 * The repository of a project, with the installation every GitHub call for it must use: the project's installation
 * while it is still its team's, not suspended, and still covers the repository. Checked before each use (reading
 * stagely.yaml, minting a clone token, reporting), so a disconnected, suspended or uninstalled App stops at once.
 */
export async function repositoryAccess(db: Db, project: ProjectRepository): Promise<RepositoryAccess> {
  const fullName = fullNameOf(project.repoUrl);
  const [owner = "", name = ""] = fullName.split("/");
  const notInstalled: RepositoryAccess = {
    ok: false,
    reason: `the Stagely GitHub App is not installed on ${fullName} for this team (or was uninstalled or disconnected): a team admin can install it from GET /v1/teams/${project.teamId}/github/install-url`,
  };
  if (project.githubInstallationId === null) return notInstalled;
  const result = await db.execute<{ account_login: string; suspended: boolean; covered: boolean }>(sql`
    SELECT i.account_login, i.suspended_at IS NOT NULL AS suspended,
           EXISTS (SELECT 1 FROM ${githubInstallationRepositories} r WHERE r.installation_id = i.id AND r.full_name = ${fullName}) AS covered
      FROM ${githubInstallations} i
     WHERE i.id = ${project.githubInstallationId} AND i.team_id = ${project.teamId}`);
  const installation = result.rows[0];
  if (!installation) return notInstalled;
  if (installation.suspended) {
    return { ok: false, reason: `the Stagely GitHub App installation on ${installation.account_login} is suspended; unsuspend it in that account's GitHub settings (GitHub Apps)` };
  }
  if (!installation.covered) {
    return { ok: false, reason: `${fullName} is not among the repositories the Stagely GitHub App installation on ${installation.account_login} can access; add it in the installation's settings on GitHub` };
  }
  return { ok: true, repo: { owner, name, installationId: project.githubInstallationId } };
}

/**
 * The team's (not suspended) installation that covers the repository, as a scalar subquery: NULL when there is none.
 * `teamId` may be a value or an SQL expression over the row being written.
 */
export function coveringInstallation(teamId: string | SQL, repoUrl: string): SQL {
  return sql`(SELECT i.id FROM ${githubInstallations} i
                JOIN ${githubInstallationRepositories} r ON r.installation_id = i.id
               WHERE i.team_id = ${teamId} AND i.suspended_at IS NULL AND r.full_name = ${fullNameOf(repoUrl)}
               ORDER BY i.id LIMIT 1)`;
}

/** Why a project may not name a repository, and how to fix it. */
export function notCoveredMessage(repoUrl: string, team: string): string {
  return (
    `repo_url: ${fullNameOf(repoUrl)} is not covered by an active Stagely GitHub App installation of this team. ` +
    `Install the App on it (GET /v1/teams/${team}/github/install-url gives the link); ` +
    `GET /v1/teams/${team}/github/installations lists the repositories the team can use`
  );
}

function fullNameOf(repoUrl: string): string {
  return repoUrl.replace(/^https:\/\/github\.com\//, "");
}
