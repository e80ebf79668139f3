import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { getConfig } from "../../src/config.ts";
import { cloudProviders, environments } from "../../src/db/schema.ts";
import { keyringFromConfig } from "../../src/lib/crypto.ts";
import type { PullRequestMessage } from "../../src/pipeline/messages.ts";
import { providerFromRow } from "../../src/providers/factory.ts";
import { db } from "../db.ts";
import { fakeUrl } from "../fakes/urls.ts";
import { call, seedInstallation, seedTeam, seedUser } from "../harness.ts";

export const STAGELY_YAML = `version: 2
builds:
  api:
    context: ./api
    platform: linux/amd64
    build_args: {COMMIT_SHA: "\${COMMIT_HASH}"}
  web:
    context: ./web
    platform: linux/amd64
preview:
  size: small
  lifecycle:
    on_start: [{service: api, command: "npm run db:migrate"}]
`;

export const COMPOSE = `services:
  api: {image: api, environment: [DATABASE_URL]}
  web: {image: web, ports: ["80:3000"]}
`;

/** The `github.pull_request` queue message the webhook route makes of an opened pull request, with `changes`. */
export function pullRequestMessage(repo: string, installationId: number, changes: Partial<PullRequestMessage> = {}): PullRequestMessage {
  return {
    type: "github.pull_request",
    delivery_id: crypto.randomUUID(),
    installation_id: installationId,
    repository: repo,
    action: "opened",
    pr_number: 5,
    head_sha: sha(1),
    head_ref: "feature",
    title: "Add the cart",
    is_fork: false,
    updated_at: new Date().toISOString(),
    sender: "octocat",
    ...changes,
  };
}

export function sha(n: number): string {
  return n.toString(16).padStart(40, "0");
}

async function fakeGitHub(path: string, body?: unknown) {
  const response = await fetch(`${fakeUrl("github")}${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`fake GitHub ${path}: ${response.status} ${await response.text()}`);
  return response.json() as Promise<any>;
}

/**
 * A team with a project on the local cloud, its repository covered by the team's installation of the fake GitHub App,
 * with stagely.yaml and docker-compose.yml at each commit.
 */
export async function previewProject(
  commits: string[],
  options: { yaml?: string; compose?: string; quota?: { environments?: number; builds?: number }; /** registry mode (builder VMs push there) */ registry?: string } = {},
) {
  const owner = await seedUser();
  const team = await seedTeam([{ user: owner, role: "owner" }]);
  if (options.quota) {
    await call("PATCH", `/v1/teams/${team.slug}`, {
      token: owner.token,
      body: { max_concurrent_environments: options.quota.environments ?? 5, max_concurrent_builds: options.quota.builds ?? 10 },
    });
  }
  const provider = await call("POST", `/v1/teams/${team.slug}/cloud-providers`, {
    token: owner.token,
    body: { name: "local", provider_type: "local", region: "local", config: { endpoint: fakeUrl("local-cloud") } },
  });
  const repo = `acme/shop-${owner.id.slice(4, 12)}`;
  const installation = await seedInstallation(team.id, [repo]);
  const project = await call("POST", `/v1/teams/${team.slug}/projects`, {
    token: owner.token,
    body: { name: "Shop", repo_url: repo, cloud_provider_id: provider.body.id },
  });
  if (project.status !== 201) throw new Error(`project not created: ${project.text}`);
  if (options.registry) {
    const registry = await call("PUT", `/v1/projects/${project.body.id}/registry`, {
      token: owner.token,
      body: { kind: "generic", address: options.registry, username: "stagely", password: "registry-password-0123" },
    });
    if (registry.status !== 200) throw new Error(`registry not set: ${registry.text}`);
  }
  for (const commit of commits) {
    await fakeGitHub(`/_fake/repos/${repo}/files`, { ref: commit, path: "stagely.yaml", content: options.yaml ?? STAGELY_YAML });
    await fakeGitHub(`/_fake/repos/${repo}/files`, { ref: commit, path: "docker-compose.yml", content: options.compose ?? COMPOSE });
  }
  return { owner, team, repo, projectId: project.body.id as string, providerId: provider.body.id as string, installationId: installation.id };
}

export function deploymentsOf(repo: string) {
  return fakeGitHub(`/_fake/repos/${repo}/deployments`) as Promise<{ id: number; statuses: { state: string; environment_url?: string; description: string; log_url: string }[] }[]>;
}

/** The requests the fake GitHub received whose "METHOD /path" starts with `match`. */
export async function githubRequests(match: string) {
  return ((await fakeGitHub(`/_fake/requests?match=${encodeURIComponent(match)}`)) as { requests: { method: string; path: string }[] }).requests;
}

export function commentsOf(repo: string, pr: number) {
  return fakeGitHub(`/_fake/repos/${repo}/issues/${pr}/comments`) as Promise<{ id: number; body: string }[]>;
}

export async function liveEnvironment(projectId: string, prNumber: number) {
  const rows = await db.select().from(environments).where(eq(environments.projectId, projectId));
  return rows.filter((e) => e.prNumber === prNumber).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0];
}

/** Polls until `check` returns a value (not undefined/false), or fails with what it last saw. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every VM of the cloud account that is not terminated, as the provider itself sees them. */
export async function runningVms(providerId: string, filter: { environment_id?: string } = {}) {
  const [row] = await db.select().from(cloudProviders).where(eq(cloudProviders.id, providerId));
  const provider = await providerFromRow(row!, await keyringFromConfig(getConfig(env)), { stage: getConfig(env).STAGELY_ENV });
  return provider.findInstances(filter);
}
