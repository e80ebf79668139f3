import { sql } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { dbOf, type AppContext, type AppEnv } from "../app-env.ts";
import { timingSafeEqual } from "../lib/crypto.ts";
import { ApiError } from "../lib/errors.ts";
import { cachedAuth, rememberAuth } from "./auth-cache.ts";
import { checkCsrf, sessionCookieOf } from "./browser-session.ts";
import type { Role } from "./roles.ts";
import { hashToken, SESSION_TOKEN_PATTERN, TOKEN_PATTERN, type TokenKind } from "./tokens.ts";

export interface Membership {
  teamId: string;
  slug: string;
  role: Role;
}

export interface Auth {
  tokenId: string;
  tokenKind: TokenKind;
  user: { id: string; email: string; name: string | null; githubLogin: string | null };
  memberships: Membership[];
  ip: string | null;
}

declare module "hono" {
  interface ContextVariableMap {
    auth: Auth;
  }
}

/** last_used_at is refreshed at most this often, off the request path. */
const LAST_USED_RESOLUTION_MS = 5 * 60 * 1000;

interface TokenRow extends Record<string, unknown> {
  token_id: string;
  kind: TokenKind;
  token_hash: string;
  expires_at: string | null;
  last_used_at: string | null;
  user_id: string;
  email: string;
  name: string | null;
  github_login: string | null;
  is_active: boolean;
  memberships: { team_id: string; slug: string; role: Role }[];
}

const unauthorized = (message: string) =>
  new ApiError("UNAUTHORIZED", message, { headers: { "WWW-Authenticate": 'Bearer realm="stagely"' } });

/**
 * The caller's token: `Authorization: Bearer <token>` (an API token or a session), else the dashboard's session cookie,
 * whose changes must pass the CSRF check (browser-session.ts).
 */
async function presentedToken(c: AppContext): Promise<string> {
  const header = c.req.header("Authorization");
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match || !TOKEN_PATTERN.test(match[1]!)) throw unauthorized("malformed bearer token");
    return match[1]!;
  }
  const cookie = sessionCookieOf(c);
  if (!cookie) throw unauthorized("missing Authorization header; send `Authorization: Bearer <token>`");
  if (!SESSION_TOKEN_PATTERN.test(cookie)) throw unauthorized("malformed session cookie; sign in again");
  await checkCsrf(c, cookie);
  return cookie;
}

/**
 * Authenticates the caller's token in one round trip that also loads their team memberships, so most routes
 * authorize without another query; a token verified in the last 10 s costs none (auth-cache.ts).
 */
export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  const hash = await hashToken(await presentedToken(c));
  const ip = c.req.header("CF-Connecting-IP") ?? null;
  const cached = cachedAuth(hash);
  if (cached) {
    c.set("auth", { ...cached, ip });
    return next();
  }
  const db = dbOf(c);
  const result = await db.execute<TokenRow>(sql`
    SELECT t.id AS token_id, t.kind, t.token_hash, t.expires_at, t.last_used_at,
           u.id AS user_id, u.email, u.name, u.github_login, u.is_active,
           coalesce(json_agg(json_build_object('team_id', m.team_id, 'slug', tm.slug, 'role', m.role))
                    FILTER (WHERE tm.id IS NOT NULL), '[]') AS memberships
      FROM api_tokens t
      JOIN users u ON u.id = t.user_id
      LEFT JOIN team_members m ON m.user_id = u.id
      LEFT JOIN teams tm ON tm.id = m.team_id AND tm.deleted_at IS NULL
     WHERE t.token_hash = ${hash} AND t.revoked_at IS NULL
     GROUP BY t.id, u.id`);
  const row = result.rows[0];
  if (!row || !timingSafeEqual(row.token_hash, hash)) throw unauthorized("invalid or revoked token");
  if (row.expires_at && new Date(row.expires_at).getTime() <= Date.now()) throw unauthorized("token expired");
  if (!row.is_active) throw unauthorized("this account is deactivated");

  const lastUsed = row.last_used_at ? new Date(row.last_used_at).getTime() : 0;
  if (Date.now() - lastUsed > LAST_USED_RESOLUTION_MS) {
    c.executionCtx.waitUntil(
      db.execute(sql`UPDATE api_tokens SET last_used_at = now() WHERE id = ${row.token_id}`).catch((error: unknown) => {
        c.get("logger").warn("could not record token use", { error: error instanceof Error ? { name: error.name } : {} });
      }),
    );
  }
  const auth = {
    tokenId: row.token_id,
    tokenKind: row.kind,
    user: { id: row.user_id, email: row.email, name: row.name, githubLogin: row.github_login },
    memberships: row.memberships.map((m) => ({ teamId: m.team_id, slug: m.slug, role: m.role })),
  };
  rememberAuth(hash, auth, row.expires_at ? new Date(row.expires_at).getTime() : null);
  c.set("auth", { ...auth, ip });
  await next();
});
