import { eq } from "drizzle-orm";
import type { Db } from "../src/db/client.ts";
import { githubInstallationRepositories, githubInstallations, projects } from "../src/db/schema.ts";
import { accessFrom, installationOfProject, installationStateColumns, type RepositoryAccess } from "../src/installations/access.ts";

export interface SeededInstallation {
  id: number;
  repositories: { id: number; full_name: string }[];
}

async function fakeGitHub<T = any>(githubUrl: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${githubUrl}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) throw new Error(`fake GitHub ${method} ${path}: ${response.status} ${await response.text()}`);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

/**
 * The GitHub App installed on these repositories (`owner/name`, on the fake GitHub at `githubUrl`) and connected to
 * the team, as the install flow leaves it. `teamId` null leaves it unclaimed (known from webhooks only). Plain fetch and
 * the database: usable inside workerd (test/harness.ts) and from node (test/system).
 */
export async function installApp(
  db: Db,
  githubUrl: string,
  teamId: string | null,
  repositories: string[],
  options: { suspended?: boolean } = {},
): Promise<SeededInstallation> {
  const created = await fakeGitHub<{ id: number; account: string; repositories: { id: number; full_name: string }[] }>(githubUrl, "POST", "/_fake/app/installations", { repositories });
  if (options.suspended) await fakeGitHub(githubUrl, "PATCH", `/_fake/app/installations/${created.id}`, { suspended: true });
  await db.batch([
    db.insert(githubInstallations).values({
      id: created.id,
      teamId,
      accountLogin: created.account,
      accountType: "Organization",
      repositorySelection: "selected",
      permissions: { contents: "read", metadata: "read", deployments: "write", issues: "write", pull_requests: "write" },
      suspendedAt: options.suspended ? new Date() : null,
    }),
    db.insert(githubInstallationRepositories).values(created.repositories.map((r) => ({ installationId: created.id, repositoryId: r.id, fullName: r.full_name }))),
  ]);
  return { id: created.id, repositories: created.repositories };
}

/** A project's repository access as the pipeline's loaders decide it (their columns, `accessFrom`), read on its own. */
export async function repositoryAccess(db: Db, project: Parameters<typeof accessFrom>[0]): Promise<RepositoryAccess> {
  const [row] = await db.select(installationStateColumns).from(projects).leftJoin(githubInstallations, installationOfProject).where(eq(projects.id, project.id));
  return accessFrom(project, row);
}
