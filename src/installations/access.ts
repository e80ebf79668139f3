import { and, eq, sql, type SQL } from "drizzle-orm";
import { githubInstallationRepositories, githubInstallations, projects } from "../db/schema.ts";
import type { RepoRef } from "../pipeline/github-app.ts";

export type RepositoryAccess = { ok: true; repo: RepoRef } | { ok: false; reason: string };

interface ProjectRepository {
  id: string;
  teamId: string;
  repoUrl: string;
  githubInstallationId: number | null;
}

/** What a query reads about a project's installation to decide its repository access (see `accessFrom`). */
export interface InstallationState {
  /** Null when the project has no installation of its team (the left join found none). */
  id: number | null;
  accountLogin: string | null;
  suspended: boolean;
  covered: boolean;
}

/**
 * The columns of `InstallationState` for a select that left-joins `githubInstallations` on `installationOfProject`,
 * so a loader gets a project's repository access in its own round trip.
 */
export const installationStateColumns = {
  id: githubInstallations.id,
  accountLogin: githubInstallations.accountLogin,
  suspended: sql<boolean>`${githubInstallations.suspendedAt} IS NOT NULL`,
  covered: sql<boolean>`EXISTS (SELECT 1 FROM ${githubInstallationRepositories} r
                                 WHERE r.installation_id = ${githubInstallations.id} AND 'https://github.com/' || r.full_name = ${projects.repoUrl})`,
};

/** The join condition for `installationStateColumns`: the project's installation, only while its team's. */
export const installationOfProject = and(eq(githubInstallations.id, projects.githubInstallationId), eq(githubInstallations.teamId, projects.teamId));

/**
 * The repository of a project, with the installation every GitHub call for it must use: the project's installation
 * while it is still its team's, not suspended, and still covers the repository. Decided before each use (reading
 * stagely.yaml, minting a clone token, reporting) from state read in the same round trip as the step's other data,
 * so a disconnected, suspended or uninstalled App stops at once.
 */
export function accessFrom(project: ProjectRepository, installation: InstallationState | null | undefined): RepositoryAccess {
  const fullName = fullNameOf(project.repoUrl);
  const [owner = "", name = ""] = fullName.split("/");
  if (project.githubInstallationId === null || installation?.id == null) {
    return {
      ok: false,
      reason: `the Stagely GitHub App is not installed on ${fullName} for this team (or was uninstalled or disconnected): a team admin can install it from GET /v1/teams/${project.teamId}/github/install-url`,
    };
  }
  if (installation.suspended) {
    return { ok: false, reason: `the Stagely GitHub App installation on ${installation.accountLogin} is suspended; unsuspend it in that account's GitHub settings (GitHub Apps)` };
  }
  if (!installation.covered) {
    return { ok: false, reason: `${fullName} is not among the repositories the Stagely GitHub App installation on ${installation.accountLogin} can access; add it in the installation's settings on GitHub` };
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
