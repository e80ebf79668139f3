import { sql } from "drizzle-orm";
import { getCookie, setCookie, deleteCookie } from "hono/cookie";
import * as z from "zod";
import { configOf, dbOf } from "../../app-env.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { apiTokens, auditLogs, users } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { returnPath, startBrowserSession } from "../browser-session.ts";
import { authorizeUrl, fetchIdentity, oauthApp, signState, STATE_COOKIE, STATE_TTL_SECONDS, verifyState } from "../github-oauth.ts";
import { SESSION_DAYS, userSchema, toApiUser } from "../model.ts";
import { generateToken } from "../tokens.ts";

/** Set when the sign-in started in a browser that wants the session as a cookie, and where to go afterwards. */
const RETURN_COOKIE = "stagely_oauth_return";

export const startGitHubLogin = defineRoute({
  method: "get",
  path: "/v1/auth/github",
  summary: "Start signing in with GitHub (redirects to GitHub); with return_to the session ends up in a cookie (the dashboard)",
  tag: "auth",
  access: { kind: "public", perIpLimit: "SIGN_IN_RATE_LIMITER" },
  query: z.object({ return_to: returnPath.optional().describe("browser sign-in: where to go afterwards, a path on this site") }),
  status: 302,
  async handler(c, { query }) {
    const app = await oauthApp(configOf(c));
    const { state, nonce } = await signState(app);
    const cookie = { httpOnly: true, secure: new URL(c.req.url).protocol === "https:", sameSite: "Lax", path: "/v1/auth/github", maxAge: STATE_TTL_SECONDS } as const;
    setCookie(c, STATE_COOKIE, nonce, cookie);
    if (query.return_to) setCookie(c, RETURN_COOKIE, query.return_to, cookie);
    return c.redirect(authorizeUrl(app, state), 302);
  },
});

export const finishGitHubLogin = defineRoute({
  method: "get",
  path: "/v1/auth/github/callback",
  summary: "GitHub sends the user back here; answers with a session token, or for a browser sign-in (return_to) sets the session cookie and redirects",
  tag: "auth",
  access: { kind: "public", perIpLimit: "SIGN_IN_RATE_LIMITER" },
  query: z.object({
    code: z.string().min(1).max(200).optional(),
    state: z.string().min(1).max(300),
    error: z.string().max(200).optional(),
  }),
  response: z.object({ token: z.string(), token_type: z.literal("Bearer"), expires_at: z.string(), user: userSchema }),
  async handler(c, { query }) {
    const app = await oauthApp(configOf(c));
    await verifyState(app, query.state, getCookie(c, STATE_COOKIE));
    deleteCookie(c, STATE_COOKIE, { path: "/v1/auth/github" });
    const returnTo = returnPath.safeParse(getCookie(c, RETURN_COOKIE));
    deleteCookie(c, RETURN_COOKIE, { path: "/v1/auth/github" });
    if (query.error || !query.code) throw new ApiError("UNAUTHORIZED", "GitHub sign-in was cancelled or refused");
    const identity = await fetchIdentity(app, query.code);

    const db = dbOf(c);
    const session = await generateToken("session");
    const sessionId = newId("session");
    const expiresAt = new Date(Date.now() + SESSION_DAYS * 86_400_000);
    const profile = sql`github_login = ${identity.login}, name = coalesce(${users.name}, ${identity.name}),
      avatar_url = ${identity.avatarUrl}, email_verified = true, last_login_at = now()`;
    try {
      // Find the user by GitHub id, else link an account with the same email, else create one; then open a session.
      const results = await db.batch([
        db.execute<Record<string, unknown>>(sql`
          WITH by_github AS (
            UPDATE ${users} SET ${profile} WHERE github_id = ${identity.githubId} RETURNING id),
          by_email AS (
            UPDATE ${users} SET github_id = ${identity.githubId}, ${profile}
             WHERE lower(email) = lower(${identity.email}) AND github_id IS NULL AND NOT EXISTS (SELECT 1 FROM by_github)
             RETURNING id),
          created AS (
            INSERT INTO ${users} (id, email, name, avatar_url, github_id, github_login, email_verified, last_login_at)
            SELECT ${newId("user")}, ${identity.email}, ${identity.name}, ${identity.avatarUrl}, ${identity.githubId}, ${identity.login}, true, now()
             WHERE NOT EXISTS (SELECT 1 FROM by_github) AND NOT EXISTS (SELECT 1 FROM by_email)
            RETURNING id)
          SELECT id FROM by_github UNION ALL SELECT id FROM by_email UNION ALL SELECT id FROM created`),
        db.execute(sql`
          INSERT INTO ${apiTokens} (id, user_id, kind, name, token_hash, token_hint, expires_at)
          SELECT ${sessionId}, id, 'session', 'GitHub sign-in', ${session.hash}, ${session.hint}, ${expiresAt.toISOString()}
            FROM ${users} WHERE github_id = ${identity.githubId} AND is_active`),
        db.execute(sql`
          INSERT INTO ${auditLogs} (id, actor_id, actor_email, actor_ip, action, resource_type, resource_id)
          SELECT ${newId("auditLog")}, id, email, ${c.req.header("CF-Connecting-IP") ?? null}, 'user.logged_in', 'user', id
            FROM ${users} WHERE github_id = ${identity.githubId}`),
        db.select().from(users).where(sql`github_id = ${identity.githubId}`),
      ]);
      const [user] = results[3];
      if (!user || !user.isActive) throw new ApiError("FORBIDDEN", "this Stagely account is deactivated");
      if (returnTo.success) {
        await startBrowserSession(c, session.token, expiresAt);
        return c.redirect(returnTo.data, 302);
      }
      c.header("Cache-Control", "no-store");
      return c.json({ token: session.token, token_type: "Bearer" as const, expires_at: expiresAt.toISOString(), user: toApiUser(user) });
    } catch (error) {
      if (databaseErrorOf(error)?.constraint === "users_email_key") {
        throw new ApiError("CONFLICT", "a Stagely account with your GitHub email is already linked to another GitHub account");
      }
      throw error;
    }
  },
});
