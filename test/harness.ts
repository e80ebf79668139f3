import { exports } from "cloudflare:workers";
import { env } from "cloudflare:workers";
import { generateToken } from "../src/auth/tokens.ts";
import type { Role } from "../src/auth/roles.ts";
import { getConfig } from "../src/config.ts";
import { associatedData } from "../src/db/encrypted-columns.ts";
import {
  apiTokens,
  buildJobs,
  cloudProviders,
  environments,
  projects,
  secrets,
  teamMembers,
  teams,
  users,
  workflowRuns,
} from "../src/db/schema.ts";
import { keyringFromConfig } from "../src/lib/crypto.ts";
import { newId, newSubdomainHash } from "../src/lib/ids.ts";
import { encryptCredentials } from "../src/providers/credentials.ts";
import { db } from "./db.ts";
import { installApp } from "./installations.ts";
import { fakeUrl } from "./fakes/urls.ts";

/** Seeds real rows through the real schema (nothing of ours is mocked) and calls the real Worker. */

export interface SeededUser {
  id: string;
  email: string;
  token: string;
  githubLogin: string;
}

/** A user with an API token. `githubId` links the user to that GitHub account (as signing in with GitHub does);
 * `emailVerified` as GitHub sign-in would set it (seeded users have not signed in). */
export async function seedUser(options: { email?: string; name?: string; githubId?: number; emailVerified?: boolean } = {}): Promise<SeededUser> {
  const id = newId("user");
  const email = options.email ?? `${id}@example.test`;
  const githubLogin = `gh-${id.slice(4)}`;
  const token = await generateToken("api");
  await db.batch([
    db.insert(users).values({ id, email, name: options.name ?? "Test User", githubLogin, githubId: options.githubId, emailVerified: options.emailVerified ?? false }),
    db.insert(apiTokens).values({ id: newId("token"), userId: id, kind: "api", name: "test", tokenHash: token.hash, tokenHint: token.hint }),
  ]);
  return { id, email, token: token.token, githubLogin };
}

export interface SeededTeam {
  id: string;
  slug: string;
}

export async function seedTeam(members: { user: SeededUser; role: Role }[]): Promise<SeededTeam> {
  const id = newId("team");
  const slug = `team-${id.slice(5)}`;
  await db.batch([
    db.insert(teams).values({ id, slug, name: `Team ${slug}` }),
    ...members.map((m) => db.insert(teamMembers).values({ teamId: id, userId: m.user.id, role: m.role })),
  ]);
  return { id, slug };
}

/** A team with one user per role, plus an outsider who owns a team of their own. */
export async function seedWorld() {
  const [owner, admin, member, viewer, outsider] = await Promise.all([seedUser(), seedUser(), seedUser(), seedUser(), seedUser()]);
  const team = await seedTeam([
    { user: owner!, role: "owner" },
    { user: admin!, role: "admin" },
    { user: member!, role: "member" },
    { user: viewer!, role: "viewer" },
  ]);
  const otherTeam = await seedTeam([{ user: outsider!, role: "owner" }]);
  return { team, otherTeam, owner: owner!, admin: admin!, member: member!, viewer: viewer!, outsider: outsider! };
}

export async function seedCloudProvider(teamId: string, overrides: Partial<typeof cloudProviders.$inferInsert> = {}) {
  const id = newId("cloudProvider");
  const keyring = await keyringFromConfig(getConfig(env));
  const credentials = { api_token: "hcloud-seeded-token-0123456789abcdef" };
  const [row] = await db
    .insert(cloudProviders)
    .values({
      id,
      teamId,
      name: `hetzner-${id.slice(3, 9)}`,
      providerType: "hetzner",
      region: "nbg1",
      encryptedCredentials: await encryptCredentials(keyring, { id }, credentials),
      credentialsSummary: { fields: ["api_token"], hint: "…cdef" },
      // Never the real Hetzner: the fake answers (and refuses this token unless a test registers it).
      config: { endpoint: fakeUrl("hetzner") },
      ...overrides,
    })
    .returning();
  return row!;
}

export type { SeededInstallation } from "./installations.ts";

/** The GitHub App installed on these repositories and connected to the team (null: unclaimed); see installApp. */
export function seedInstallation(teamId: string | null, repositories: string[], options: { suspended?: boolean } = {}) {
  return installApp(db, fakeUrl("github"), teamId, repositories, options);
}

/** A project on a repository of its own, covered by an installation of the team (unless `githubInstallationId` is given). */
export async function seedProject(teamId: string, overrides: Partial<typeof projects.$inferInsert> = {}) {
  const id = newId("project");
  const repoUrl = overrides.repoUrl ?? `https://github.com/acme/${id}`;
  const githubInstallationId =
    overrides.githubInstallationId !== undefined ? overrides.githubInstallationId : (await seedInstallation(teamId, [repoUrl.replace("https://github.com/", "")])).id;
  const [row] = await db
    .insert(projects)
    .values({ id, teamId, slug: `app-${id.slice(4, 10)}`, name: "App", ...overrides, repoUrl, githubInstallationId })
    .returning();
  return row!;
}

export async function seedSecret(projectId: string, key = "API_KEY", value = "seeded-secret-value-0123") {
  const keyring = await keyringFromConfig(getConfig(env));
  const [row] = await db
    .insert(secrets)
    .values({ id: newId("secret"), projectId, key, scope: "global", encryptedValue: await keyring.encrypt(value, associatedData.secret({ projectId, key, scope: "global" })) })
    .returning();
  return row!;
}

/** A live environment with a run in progress and one running build job. */
export async function seedPipeline(projectId: string) {
  const environmentId = newId("environment");
  const runId = newId("workflowRun");
  const jobId = newId("buildJob");
  const [[environment], [run], [job]] = await db.batch([
    db
      .insert(environments)
      .values({ id: environmentId, projectId, prNumber: 1 + Math.floor(Math.random() * 1_000_000), branchName: "feature", commitHash: "a".repeat(40), subdomainHash: newSubdomainHash(), size: "small", region: "nbg1", status: "building" })
      .returning(),
    db.insert(workflowRuns).values({ id: runId, environmentId, trigger: "pr_opened", commitHash: "a".repeat(40), status: "building" }).returning(),
    db.insert(buildJobs).values({ id: jobId, workflowRunId: runId, name: "api_amd64", architecture: "amd64", contextPath: ".", dockerfilePath: "Dockerfile", status: "running" }).returning(),
  ]);
  return { environment: environment!, run: run!, job: job! };
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

/** Calls the real Worker. `token` undefined sends no Authorization header. */
export async function call<T = any>(method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await exports.default.fetch(
    new Request(`https://stagely.test${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body),
      redirect: "manual",
    }),
  );
  if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
    // A live stream never ends by itself: callers that want its events read the stream themselves.
    await response.body?.cancel();
    return { status: response.status, body: undefined as T, text: "", headers: response.headers };
  }
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (HTML docs page, redirects)
  }
  return { status: response.status, body: body as T, text, headers: response.headers };
}
