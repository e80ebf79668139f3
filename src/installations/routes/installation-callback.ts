import { sql } from "drizzle-orm";
import * as z from "zod";
import { configOf, dbOf } from "../../app-env.ts";
import { exchangeCode, fetchGitHubUser, oauthApp, userCanAccessInstallation } from "../../auth/github-oauth.ts";
import { atLeast, type Role } from "../../auth/roles.ts";
import type { Config } from "../../config.ts";
import { auditLogs, githubInstallations, teamMembers, teams, users } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { githubAppFromConfig, isGitHubError, type InstallationInfo, type InstallationRepository } from "../../pipeline/github-app.ts";
import { installationSchema, repositoriesOf, toApiInstallation } from "../model.ts";
import { bindProjects, ownedBy, replaceRepositories } from "../records.ts";
import { verifyInstallState, type InstallIntent } from "../state.ts";

export const CALLBACK_PATH = "/v1/github/installations/callback";

const restart = "ask for a new link with GET /v1/teams/{team}/github/install-url and install again";

const callbackAnswer = z.object({ status: z.enum(["connected", "requested"]), team: z.string(), installation: installationSchema.optional() });

/**
 * Where GitHub sends the browser after someone installs the App from a team's install link (the App's user
 * authorization callback URL, with "Request user authorization (OAuth) during installation" on). GitHub's
 * `installation_id` proves nothing by itself: the installation is recorded for the team only when the state is one
 * this server signed for that team and user, the GitHub user who authorized is that user's linked GitHub account, and
 * GitHub confirms this user can access the installation.
 */
export const installationCallback = defineRoute({
  method: "get",
  path: CALLBACK_PATH,
  summary:
    "GitHub sends the installing user back here: connects the installation to the team of the install link, then redirects to the app (JSON with Accept: application/json)",
  tag: "github",
  access: { kind: "public", perIpLimit: "SIGN_IN_RATE_LIMITER" },
  query: z.object({
    installation_id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    setup_action: z.enum(["install", "update", "request"]).optional(),
    state: z.string().min(1).max(300),
    code: z.string().min(1).max(200).optional(),
  }),
  response: callbackAnswer,
  async handler(c, { query }) {
    const config = configOf(c);
    const intent = await verifyInstallState(config, query.state);
    const db = dbOf(c);
    const caller = await installingUser(db, intent);
    const answer = (body: z.infer<typeof callbackAnswer>) => {
      c.header("Cache-Control", "no-store");
      if (c.req.header("Accept")?.includes("application/json")) return c.json(body);
      const target = new URL(`${config.PUBLIC_URL}/`);
      target.searchParams.set("github_installation", body.status === "connected" ? String(body.installation!.id) : "requested");
      target.searchParams.set("team", body.team);
      return c.redirect(target.toString(), 302);
    };
    if (query.setup_action === "request" || query.installation_id === undefined) {
      // An organization member asked its owners to install the App; an owner's install will come back here.
      return answer({ status: "requested", team: caller.teamSlug });
    }
    if (!query.code) {
      throw new ApiError(
        "UNAUTHORIZED",
        "GitHub sent no authorization code, so who installed cannot be checked (the App needs \"Request user authorization (OAuth) during installation\"); " + restart,
      );
    }
    const installationId = query.installation_id;

    const app = await oauthApp(config);
    const userToken = await exchangeCode(app, query.code, `${config.PUBLIC_URL}${CALLBACK_PATH}`, restart);
    const githubUser = await fetchGitHubUser(app, userToken);
    if (githubUser.id !== caller.githubId) {
      throw new ApiError("FORBIDDEN", `GitHub user @${githubUser.login} authorized this installation, but the install link was made for another GitHub account; ${restart}`);
    }
    if (!(await userCanAccessInstallation(app, userToken, installationId))) {
      throw new ApiError("FORBIDDEN", `GitHub user @${githubUser.login} cannot access GitHub App installation ${installationId}`);
    }
    const { info, repositories } = await readInstallation(config, installationId);

    const claimed = await claim(db, intent, caller, info, repositories, c.req.header("CF-Connecting-IP") ?? null);
    return answer({ status: "connected", team: caller.teamSlug, installation: claimed });
  },
});

interface InstallingUser {
  githubId: number;
  teamSlug: string;
}

/** The user and team of the state, as they are now: still an admin, with a linked GitHub account. */
async function installingUser(db: ReturnType<typeof dbOf>, intent: InstallIntent): Promise<InstallingUser> {
  const result = await db.execute<{ github_id: string | null; is_active: boolean; role: Role | null; slug: string | null }>(sql`
    SELECT u.github_id, u.is_active, m.role, t.slug
      FROM ${users} u
      LEFT JOIN ${teamMembers} m ON m.user_id = u.id AND m.team_id = ${intent.teamId}
      LEFT JOIN ${teams} t ON t.id = m.team_id AND t.deleted_at IS NULL
     WHERE u.id = ${intent.userId}`);
  const row = result.rows[0];
  if (!row || !row.is_active) throw new ApiError("UNAUTHORIZED", "the Stagely account that asked for this install link no longer exists or is deactivated");
  if (!row.role || !row.slug) throw new ApiError("NOT_FOUND", `team ${intent.teamId} not found`);
  if (!atLeast(row.role, "admin")) throw new ApiError("FORBIDDEN", `connecting a GitHub App installation needs the admin role or higher in team ${row.slug}; you are ${row.role}`);
  if (row.github_id === null) {
    throw new ApiError("FORBIDDEN", "your Stagely account is not linked to a GitHub account: sign in with GitHub once (GET /v1/auth/github), then ask for a new install link");
  }
  return { githubId: Number(row.github_id), teamSlug: row.slug };
}

/** The installation as the App sees it, and every repository it can access (none read while it is suspended). */
async function readInstallation(config: Config, installationId: number): Promise<{ info: InstallationInfo; repositories: InstallationRepository[] | null }> {
  try {
    const github = githubAppFromConfig(config);
    const info = await github.getInstallation(installationId);
    return { info, repositories: info.suspendedAt ? null : await github.installationRepositories(installationId) };
  } catch (error) {
    if (!isGitHubError(error)) throw error;
    if (error.kind === "not_found") throw new ApiError("UNPROCESSABLE", `GitHub App installation ${installationId} no longer exists on GitHub`);
    if (error.kind === "misconfigured") throw new ApiError("SERVICE_UNAVAILABLE", error.message);
    throw new ApiError("SERVICE_UNAVAILABLE", `GitHub could not describe the installation (${error.message}); try again`);
  }
}

/**
 * Records the installation for the team in one batch, if the user is still an admin with the same GitHub account and
 * no other team holds it: its repositories, the team's projects on them, and an audit row.
 */
async function claim(
  db: ReturnType<typeof dbOf>,
  intent: InstallIntent,
  caller: InstallingUser,
  info: InstallationInfo,
  repositories: InstallationRepository[] | null,
  ip: string | null,
) {
  const allowed = sql`EXISTS (SELECT 1 FROM ${teamMembers} m JOIN ${users} u ON u.id = m.user_id JOIN ${teams} t ON t.id = m.team_id AND t.deleted_at IS NULL
                       WHERE m.team_id = ${intent.teamId} AND m.user_id = ${intent.userId} AND m.role IN ('owner', 'admin')
                         AND u.is_active AND u.github_id = ${caller.githubId})`;
  const owned = sql`${allowed} AND ${ownedBy(info.id, intent.teamId)}`;
  const results = await db.batch([
    db.execute(sql`
      INSERT INTO ${githubInstallations} (id, team_id, claimed_by, account_login, account_type, repository_selection, permissions, suspended_at)
      SELECT ${info.id}, ${intent.teamId}, ${intent.userId}, ${info.accountLogin}, ${info.accountType}, ${info.repositorySelection},
             ${JSON.stringify(info.permissions)}::jsonb, ${info.suspendedAt}::timestamptz
       WHERE ${allowed}
      ON CONFLICT (id) DO UPDATE SET team_id = EXCLUDED.team_id, claimed_by = EXCLUDED.claimed_by, account_login = EXCLUDED.account_login,
             account_type = EXCLUDED.account_type, repository_selection = EXCLUDED.repository_selection,
             permissions = EXCLUDED.permissions, suspended_at = EXCLUDED.suspended_at
       WHERE ${githubInstallations.teamId} IS NULL OR ${githubInstallations.teamId} = EXCLUDED.team_id`),
    ...(repositories ? replaceRepositories(db, info.id, repositories, owned) : []),
    bindProjects(db, info.id, owned),
    db.execute(sql`
      INSERT INTO ${auditLogs} (id, actor_id, actor_email, actor_ip, action, resource_type, resource_id, team_id, metadata)
      SELECT ${newId("auditLog")}, u.id, u.email, ${ip}, 'github_installation.connected', 'github_installation', ${String(info.id)}, ${intent.teamId},
             ${JSON.stringify({ account: info.accountLogin, repositories: repositories?.length ?? null })}::jsonb
        FROM ${users} u WHERE u.id = ${intent.userId} AND ${owned}`),
    db.execute<{ allowed: boolean; owned: boolean }>(sql`SELECT ${allowed} AS allowed, ${ownedBy(info.id, intent.teamId)} AS owned`),
    db.select({ installation: githubInstallations, repositories: repositoriesOf }).from(githubInstallations).where(sql`${githubInstallations.id} = ${info.id}`),
  ]);
  const outcome = (results[results.length - 2] as { rows: { allowed: boolean; owned: boolean }[] }).rows[0]!;
  const [row] = results[results.length - 1] as { installation: typeof githubInstallations.$inferSelect; repositories: { id: number; full_name: string }[] }[];
  if (!outcome.allowed) throw new ApiError("FORBIDDEN", `you are no longer an admin of team ${caller.teamSlug} (or your GitHub account changed); ${restart}`);
  if (!outcome.owned || !row) {
    throw new ApiError("CONFLICT", "this GitHub App installation is connected to another Stagely team; an admin of that team must disconnect it first");
  }
  return toApiInstallation(row.installation, row.repositories);
}
