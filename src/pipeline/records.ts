import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { buildJobs, cloudProviders, environments, githubInstallations, projects, workflowRuns } from "../db/schema.ts";
import { accessFrom, installationOfProject, installationStateColumns, type InstallationState } from "../installations/access.ts";

/** A loaded row with the project's repository access decided from the installation state read with it. */
function withAccess<Row extends { project: Parameters<typeof accessFrom>[0]; installation: InstallationState | null }>(row: Row | undefined) {
  if (!row) return null;
  const { installation, ...rest } = row;
  return { ...rest, access: accessFrom(row.project, installation) };
}

/** A build job with everything a pipeline step needs about it (the repository access too), in one round trip. */
export async function loadJob(db: Db, jobId: string) {
  const [row] = await db
    .select({ job: buildJobs, run: workflowRuns, environment: environments, project: projects, provider: cloudProviders, installation: installationStateColumns })
    .from(buildJobs)
    .innerJoin(workflowRuns, eq(workflowRuns.id, buildJobs.workflowRunId))
    .innerJoin(environments, eq(environments.id, workflowRuns.environmentId))
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .leftJoin(cloudProviders, eq(cloudProviders.id, buildJobs.cloudProviderId))
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

/** An environment with its project, cloud provider and the repository access, in one round trip. */
export async function loadEnvironment(db: Db, environmentId: string) {
  const [row] = await db
    .select({ environment: environments, project: projects, provider: cloudProviders, installation: installationStateColumns })
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
