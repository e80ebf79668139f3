import { eq, sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsert } from "../../audit/record.ts";
import { apiTokens } from "../../db/schema.ts";
import { defineRoute } from "../../lib/route.ts";
import { endBrowserSession } from "../browser-session.ts";
import { forgetCachedAuth } from "../auth-cache.ts";

export const logout = defineRoute({
  method: "post",
  path: "/v1/auth/logout",
  summary: "Revoke the token this request was made with (and clear the dashboard's session cookies)",
  tag: "auth",
  access: { kind: "user" },
  status: 204,
  async handler(c) {
    const auth = c.get("auth");
    const db = dbOf(c);
    await db.batch([
      db.update(apiTokens).set({ revokedAt: sql`coalesce(${apiTokens.revokedAt}, now())` }).where(eq(apiTokens.id, auth.tokenId)),
      auditInsert(db, auth, { action: "user.logged_out", resourceType: "api_token", resourceId: auth.tokenId }),
    ]);
    forgetCachedAuth();
    endBrowserSession(c);
    return c.body(null, 204);
  },
});
