import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { agentConnections, buildJobs, cloudProviders, environments, githubInstallations, projectRegistries, projects, secrets, workflowRuns } from "../db/schema.ts";
import { accessFrom, installationOfProject, installationStateColumns, type InstallationState } from "../installations/access.ts";
import { projectHasRegistry } from "../registries/resolve.ts";

/** A loaded row with the project's repository access decided from the installation state read with it. */
function withAccess<Row extends { project: Parameters<typeof accessFrom>[0]; installation: InstallationState | null }>(row: Row | undefined) {
  if (!row) return null;
  const { installation, ...rest } = row;
  return { ...rest, access: accessFrom(row.project, installation) };
}

/** The agent id of the newest unrevoked preview agent of the environment a query selects from, or null. */
export const previewAgentIdColumn = sql<string | null>`(
  SELECT ${agentConnections.agentId} FROM ${agentConnections}
   WHERE ${agentConnections.environmentId} = ${environments.id} AND ${agentConnections.role} = 'preview' AND ${agentConnections.revokedAt} IS NULL
   ORDER BY ${agentConnections.createdAt} DESC LIMIT 1)`;

/**
 * A build job with everything a pipeline step needs about it in one round trip: the repository access, the project's
 * registry (null: default mode) and the environment's preview agent.
 */
export async function loadJob(db: Db, jobId: string) {
  const [row] = await db
    .select({
      job: buildJobs,
      run: workflowRuns,
      environment: environments,
      project: projects,
      provider: cloudProviders,
      registry: projectRegistries,
      previewAgentId: previewAgentIdColumn,
      installation: installationStateColumns,
    })
    .from(buildJobs)
    .innerJoin(workflowRuns, eq(workflowRuns.id, buildJobs.workflowRunId))
    .innerJoin(environments, eq(environments.id, workflowRuns.environmentId))
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .leftJoin(cloudProviders, eq(cloudProviders.id, buildJobs.cloudProviderId))
    .leftJoin(projectRegistries, eq(projectRegistries.projectId, projects.id))
    .leftJoin(githubInstallations, installationOfProject)
    .where(eq(buildJobs.id, jobId));
  return withAccess(row);
}

/** A run with its environment, project, the environment's cloud provider and the repository access, in one round trip. */
export async function loadRun(db: Db, runId: string) {
  const [row] = await db
    .select({ run: workflowRuns, environment: environments, project: projects, provider: cloudProviders, installation: installationStateColumns })
    .from(workflowRuns)
    .innerJoin(environments, eq(environments.id, workflowRuns.environmentId))
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .leftJoin(cloudProviders, eq(cloudProviders.id, environments.cloudProviderId))
    .leftJoin(githubInstallations, installationOfProject)
    .where(eq(workflowRuns.id, runId));
  return withAccess(row);
}

/**
 * Everything a deploy needs, in one round trip (one batch of selects): the run with its environment, project, the
 * environment's cloud provider, the project's registry and preview agent, the run's build jobs and the project's
 * secrets. A fork's environment gets no secret rows: they are not even read.
 */
export async function loadDeploy(db: Db, runId: string) {
  const [[row], jobs, secretRows] = await db.batch([
    db
      .select({ run: workflowRuns, environment: environments, project: projects, provider: cloudProviders, registry: projectRegistries, previewAgentId: previewAgentIdColumn })
      .from(workflowRuns)
      .innerJoin(environments, eq(environments.id, workflowRuns.environmentId))
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .leftJoin(cloudProviders, eq(cloudProviders.id, environments.cloudProviderId))
      .leftJoin(projectRegistries, eq(projectRegistries.projectId, projects.id))
      .where(eq(workflowRuns.id, runId)),
    db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, runId)),
    db
      .select({ secret: secrets })
      .from(secrets)
      .innerJoin(environments, eq(environments.projectId, secrets.projectId))
      .innerJoin(workflowRuns, eq(workflowRuns.environmentId, environments.id))
      .where(and(eq(workflowRuns.id, runId), eq(environments.isFork, false))),
  ]);
  if (!row) return null;
  return { ...row, jobs, secrets: secretRows.map((r) => r.secret) };
}

/** An environment with its project, cloud provider and the repository access, in one round trip. */
export async function loadEnvironment(db: Db, environmentId: string) {
  const [row] = await db
    .select({ environment: environments, project: projects, provider: cloudProviders, installation: installationStateColumns, hasRegistry: projectHasRegistry })
    .from(environments)
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .leftJoin(cloudProviders, eq(cloudProviders.id, environments.cloudProviderId))
    .leftJoin(githubInstallations, installationOfProject)
    .where(eq(environments.id, environmentId));
  return withAccess(row);
}

export function repoOf(repoUrl: string): string {
  return repoUrl.replace(/^https:\/\/github\.com\//, "");
}

/**
 * A preview's address. `*.localhost` preview domains exist only in development, where the same `wrangler dev` serves
 * the API and the previews: they take PUBLIC_URL's scheme and port (http://<hash>.preview.localhost:8787).
 */
export function previewUrl(subdomainHash: string, settings: { PREVIEW_DOMAIN: string; PUBLIC_URL: string }): string {
  const host = `${subdomainHash}.${settings.PREVIEW_DOMAIN}`;
  if (settings.PREVIEW_DOMAIN !== "localhost" && !settings.PREVIEW_DOMAIN.endsWith(".localhost")) return `https://${host}`;
  const api = new URL(settings.PUBLIC_URL);
  return `${api.protocol}//${host}${api.port ? `:${api.port}` : ""}`;
}
