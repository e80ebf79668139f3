import { sql } from "drizzle-orm";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import * as z from "zod";
import { configOf, dbOf } from "../../app-env.ts";
import { fetchIdentity, oauthApp, authorizeUrl, STATE_TTL_SECONDS, type GitHubOAuthApp } from "../../auth/github-oauth.ts";
import type { Config } from "../../config.ts";
import { auditLogs, environments, projects, teamMembers, teams, users } from "../../db/schema.ts";
import { decodeBase64Url, encodeBase64Url } from "hono/utils/encode";
import { deriveHmacKey, hmacSha256Hex, randomHex, timingSafeEqual } from "../../lib/crypto.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { RESERVED_PREFIX, safeReturnPath } from "../credentials.ts";
import { previewHostOf, type PreviewHostName } from "../hosts.ts";
import { previewHostStub } from "../stubs.ts";

/**
 * Signing in to a team-only preview. The preview host sends the visitor here (the API host); GitHub says who they
 * are; if they belong to the team that owns the preview, the preview's host mints a one-time code and the visitor
 * goes back to `<preview>/__stagely/auth?code=…`, where the code becomes a cookie for that one host. No session on
 * the API host is created: the cookie is the preview's own.
 */

const STATE_COOKIE = "stagely_preview_oauth";
const PREVIEW_STATE_KEY_INFO = "stagely/preview-sign-in-state/v1";
const COOKIE_PATH = "/v1/auth/github";

const destination = z.object({ origin: z.string(), path: z.string() });
const statePayload = destination.extend({ nonce: z.string(), expires: z.number() });

async function previewOAuthApp(config: Config): Promise<GitHubOAuthApp> {
  const app = await oauthApp(config);
  // GitHub accepts a redirect_uri below the registered callback URL. Preview sign-in states have a key of their own.
  return { ...app, callbackUrl: `${app.callbackUrl}/preview`, stateKey: await deriveHmacKey(config.ENCRYPTION_KEY, PREVIEW_STATE_KEY_INFO) };
}

/** The preview an origin names (`https://<hash>.<PREVIEW_DOMAIN>`, http only when the API itself is served over http). */
function previewOf(origin: string, config: Config): { origin: string; host: PreviewHostName } {
  const invalid = new ApiError("VALIDATION_FAILED", "origin must be the address of a preview, like https://<hash>.<preview domain>", {
    issues: [{ path: "origin", message: "not a preview origin" }],
  });
  if (!URL.canParse(origin)) throw invalid;
  const url = new URL(origin);
  const allowed = url.protocol === "https:" || (url.protocol === "http:" && new URL(config.PUBLIC_URL).protocol === "http:");
  const host = previewHostOf(url.hostname, config);
  if (!allowed || url.origin !== origin || !host || host === "invalid") throw invalid;
  return { origin: url.origin, host };
}

async function signState(app: GitHubOAuthApp, payload: z.infer<typeof statePayload>): Promise<string> {
  const body = encodeBase64Url(new TextEncoder().encode(JSON.stringify(payload)).buffer);
  return `${body}.${await hmacSha256Hex(app.stateKey, body)}`;
}

async function verifyState(app: GitHubOAuthApp, state: string, cookieNonce: string | undefined): Promise<z.infer<typeof destination>> {
  const [body = "", mac = ""] = state.split(".");
  if (!timingSafeEqual(mac, await hmacSha256Hex(app.stateKey, body))) throw new ApiError("UNAUTHORIZED", "invalid sign-in state; open the preview again");
  const parsed = statePayload.safeParse((() => {
    try {
      return JSON.parse(new TextDecoder().decode(decodeBase64Url(body)));
    } catch {
      return undefined;
    }
  })());
  if (!parsed.success) throw new ApiError("UNAUTHORIZED", "invalid sign-in state; open the preview again");
  if (parsed.data.expires < Date.now() / 1000) throw new ApiError("UNAUTHORIZED", "the sign-in took too long; open the preview again");
  if (!cookieNonce || !timingSafeEqual(cookieNonce, parsed.data.nonce)) {
    throw new ApiError("UNAUTHORIZED", "this sign-in was not started from this browser; open the preview again");
  }
  return { origin: parsed.data.origin, path: parsed.data.path };
}

export const startPreviewSignIn = defineRoute({
  method: "get",
  path: "/v1/auth/github/preview",
  summary: "Sign in to a team-only preview with GitHub (the preview sends visitors here)",
  tag: "previews",
  access: { kind: "public", perIpLimit: "SIGN_IN_RATE_LIMITER" },
  query: z.object({ origin: z.string().min(1).max(300), path: z.string().max(2000).default("/") }),
  status: 302,
  async handler(c, { query }) {
    const config = configOf(c);
    const { origin } = previewOf(query.origin, config);
    const app = await previewOAuthApp(config);
    const nonce = randomHex(16);
    const state = await signState(app, { origin, path: safeReturnPath(query.path), nonce, expires: Math.floor(Date.now() / 1000) + STATE_TTL_SECONDS });
    setCookie(c, STATE_COOKIE, nonce, { httpOnly: true, secure: new URL(c.req.url).protocol === "https:", sameSite: "Lax", path: COOKIE_PATH, maxAge: STATE_TTL_SECONDS });
    return c.redirect(authorizeUrl(app, state), 302);
  },
});

export const finishPreviewSignIn = defineRoute({
  method: "get",
  path: "/v1/auth/github/callback/preview",
  summary: "GitHub sends the visitor back here; a team member goes on to the preview with a one-time code",
  tag: "previews",
  access: { kind: "public", perIpLimit: "SIGN_IN_RATE_LIMITER" },
  query: z.object({
    code: z.string().min(1).max(200).optional(),
    state: z.string().min(1).max(4000),
    error: z.string().max(200).optional(),
  }),
  status: 302,
  async handler(c, { query }) {
    const config = configOf(c);
    const app = await previewOAuthApp(config);
    const target = await verifyState(app, query.state, getCookie(c, STATE_COOKIE));
    deleteCookie(c, STATE_COOKIE, { path: COOKIE_PATH });
    if (query.error || !query.code) throw new ApiError("UNAUTHORIZED", "GitHub sign-in was cancelled or refused");
    const { origin, host } = previewOf(target.origin, config);
    const identity = await fetchIdentity(app, query.code);

    // The visitor's Stagely account (by GitHub id, or by verified email if it was never linked) as a member of the
    // team owning the preview; the audit row is written only when there is one.
    const member = sql`
      SELECT u.id AS user_id, u.email, e.id AS environment_id, p.id AS project_id, p.team_id
        FROM ${users} u
        JOIN ${teamMembers} m ON m.user_id = u.id
        JOIN ${teams} t ON t.id = m.team_id AND t.deleted_at IS NULL
        JOIN ${projects} p ON p.team_id = m.team_id
        JOIN ${environments} e ON e.project_id = p.id
       WHERE e.subdomain_hash = ${host.hash} AND e.status NOT IN ('terminated', 'reaped') AND u.is_active
         AND (u.github_id = ${identity.githubId} OR (u.github_id IS NULL AND lower(u.email) = lower(${identity.email})))
       ORDER BY (u.github_id IS NOT NULL) DESC
       LIMIT 1`;
    const db = dbOf(c);
    const [, found] = await db.batch([
      db.execute(sql`
        INSERT INTO ${auditLogs} (id, actor_id, actor_email, actor_ip, action, resource_type, resource_id, team_id, project_id, metadata)
        SELECT ${newId("auditLog")}, m.user_id, m.email, ${c.req.header("CF-Connecting-IP") ?? null}, 'environment.preview_signed_in',
               'environment', m.environment_id, m.team_id, m.project_id, ${JSON.stringify({ github_login: identity.login, route: host.route })}::jsonb
          FROM (${member}) AS m`),
      db.execute<{ user_id: string }>(member),
    ]);
    const userId = found.rows[0]?.user_id;
    if (!userId) {
      throw new ApiError("FORBIDDEN", `the GitHub account ${identity.login} is not a member of the team that owns this preview; ask a team admin to add you`);
    }
    const code = await previewHostStub(c.env, host.hash).mintSignInCode({ hash: host.hash, userId, route: host.route });
    const back = new URL(`${origin}${RESERVED_PREFIX}auth`);
    back.searchParams.set("code", code);
    back.searchParams.set("path", target.path);
    c.header("Cache-Control", "no-store");
    return c.redirect(back.toString(), 302);
  },
});
