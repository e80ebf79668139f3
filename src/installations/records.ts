import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { githubInstallationRepositories, githubInstallations, projects } from "../db/schema.ts";
import type { InstallationInfo, InstallationRepository } from "../pipeline/github-app.ts";

/**
 * The statements that keep installations and their repositories as GitHub describes them. Each returns statements for
 * a `db.batch`, runs only where `gate` holds, and is safe to apply twice.
 */

/** Records what GitHub says about an installation (account, selection, permissions, suspension); never its team. */
export function upsertInstallation(db: Db, info: InstallationInfo) {
  const values = {
    accountLogin: info.accountLogin,
    accountType: info.accountType,
    repositorySelection: info.repositorySelection,
    permissions: info.permissions,
    suspendedAt: info.suspendedAt ? new Date(info.suspendedAt) : null,
  };
  return db.insert(githubInstallations).values({ id: info.id, ...values }).onConflictDoUpdate({ target: githubInstallations.id, set: values });
}

/** Adds repositories to an installation (a renamed one keeps its id and takes the new name). */
export function addRepositories(db: Db, installationId: number, repositories: InstallationRepository[], gate: SQL = sql`true`) {
  if (repositories.length === 0) return [];
  const rows = sql.join(
    repositories.map((r) => sql`(${r.id}::bigint, ${r.fullName})`),
    sql`, `,
  );
  return [
    db.execute(sql`
      INSERT INTO ${githubInstallationRepositories} (installation_id, repository_id, full_name)
      SELECT ${installationId}, r.id, r.full_name FROM (VALUES ${rows}) AS r(id, full_name) WHERE ${gate}
      ON CONFLICT (installation_id, repository_id) DO UPDATE SET full_name = EXCLUDED.full_name
       WHERE ${githubInstallationRepositories.fullName} <> EXCLUDED.full_name`),
  ];
}

/** Removes the given repositories from an installation. */
export function removeRepositories(db: Db, installationId: number, repositoryIds: number[], gate: SQL = sql`true`) {
  if (repositoryIds.length === 0) return [];
  return [
    db.execute(sql`
      DELETE FROM ${githubInstallationRepositories}
       WHERE installation_id = ${installationId} AND repository_id IN (${sql.join(repositoryIds.map((id) => sql`${id}`), sql`, `)}) AND ${gate}`),
  ];
}

/** Makes the installation's repositories exactly this list (after reading the whole list from GitHub). */
export function replaceRepositories(db: Db, installationId: number, repositories: InstallationRepository[], gate: SQL = sql`true`) {
  const stale = repositories.length ? sql`AND repository_id NOT IN (${sql.join(repositories.map((r) => sql`${r.id}`), sql`, `)})` : sql``;
  return [
    db.execute(sql`DELETE FROM ${githubInstallationRepositories} WHERE installation_id = ${installationId} ${stale} AND ${gate}`),
    ...addRepositories(db, installationId, repositories, gate),
  ];
}

/** Points the owning team's projects on the installation's repositories at it (after a claim, or repositories added). */
export function bindProjects(db: Db, installationId: number, gate: SQL = sql`true`) {
  return db.execute(sql`
    UPDATE ${projects} SET github_installation_id = ${installationId}
     WHERE team_id = (SELECT team_id FROM ${githubInstallations} WHERE id = ${installationId})
       AND repo_url IN (SELECT 'https://github.com/' || full_name FROM ${githubInstallationRepositories} WHERE installation_id = ${installationId})
       AND github_installation_id IS DISTINCT FROM ${installationId}
       AND ${gate}`);
}

/** Detaches projects from an installation that is gone or no longer the team's. */
export function unbindProjects(db: Db, installationId: number, teamId?: string) {
  const ofTeam = teamId === undefined ? sql`` : sql`AND team_id = ${teamId}`;
  return db.execute(sql`UPDATE ${projects} SET github_installation_id = NULL WHERE github_installation_id = ${installationId} ${ofTeam}`);
}

/** `EXISTS` when the installation belongs to this team (inside the batch, after earlier statements). */
export function ownedBy(installationId: number, teamId: string): SQL {
  return sql`EXISTS (SELECT 1 FROM ${githubInstallations} WHERE id = ${installationId} AND team_id = ${teamId})`;
}
