import { sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { startBrowserSession } from "../browser-session.ts";
import { SESSION_DAYS } from "../model.ts";
import { generateToken, hashToken, SIGN_IN_LINK_PATTERN } from "../tokens.ts";

export const useSignInLink = defineRoute({
  method: "get",
  path: "/v1/auth/link",
  summary: "Open a one-time sign-in link (printed by `npm run dev`): sets the dashboard's session cookie and redirects to it",
  tag: "auth",
  access: { kind: "public", perIpLimit: "SIGN_IN_RATE_LIMITER" },
  query: z.object({ code: z.string().regex(SIGN_IN_LINK_PATTERN, "must be the code of a sign-in link") }),
  status: 302,
  async handler(c, { query }) {
    const session = await generateToken("session");
    const expiresAt = new Date(Date.now() + SESSION_DAYS * 86_400_000);
    // One statement: use the link up (only once, only before it expires), open a session for its user, audit it.
    const result = await dbOf(c).execute<{ user_id: string }>(sql`
      WITH used AS (
        UPDATE api_tokens SET revoked_at = now()
         WHERE token_hash = ${await hashToken(query.code)} AND kind = 'sign_in_link' AND revoked_at IS NULL AND expires_at > now()
        RETURNING user_id),
      opened AS (
        INSERT INTO api_tokens (id, user_id, kind, name, token_hash, token_hint, expires_at)
        SELECT ${newId("token")}, u.id, 'session', 'sign-in link', ${session.hash}, ${session.hint}, ${expiresAt.toISOString()}
          FROM used JOIN users u ON u.id = used.user_id AND u.is_active
        RETURNING user_id)
      INSERT INTO audit_logs (id, actor_id, actor_email, actor_ip, action, resource_type, resource_id, metadata)
      SELECT ${newId("auditLog")}, u.id, u.email, ${c.req.header("CF-Connecting-IP") ?? null}, 'user.logged_in', 'user', u.id, '{"via": "sign_in_link"}'::jsonb
        FROM opened JOIN users u ON u.id = opened.user_id
      RETURNING actor_id AS user_id`);
    if (result.rows.length === 0) {
      throw new ApiError("UNAUTHORIZED", "this sign-in link was already used, has expired or belongs to a deactivated account; get a new one (restart `npm run dev`)");
    }
    await startBrowserSession(c, session.token, expiresAt);
    return c.redirect("/", 302);
  },
});
