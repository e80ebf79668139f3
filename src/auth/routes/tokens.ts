import { and, eq, isNull, sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsert, auditInsertWhere } from "../../audit/record.ts";
import { apiTokens } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { tokenParams, tokenSchema, toApiToken } from "../model.ts";
import { generateToken } from "../tokens.ts";
import { forgetCachedAuth } from "../auth-cache.ts";

export const listTokens = defineRoute({
  method: "get",
  path: "/v1/tokens",
  summary: "List your personal API tokens (never their values)",
  tag: "auth",
  access: { kind: "user" },
  query: pageQuery,
  response: pageSchema(tokenSchema),
  async handler(c, { query }) {
    const page = keyset(apiTokens.createdAt, apiTokens.id, query);
    const rows = await dbOf(c)
      .select()
      .from(apiTokens)
      .where(and(eq(apiTokens.userId, c.get("auth").user.id), eq(apiTokens.kind, "api"), isNull(apiTokens.revokedAt), page.where))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    return c.json(page.page(rows, (r) => ({ at: r.createdAt, id: r.id }), toApiToken));
  },
});

export const createToken = defineRoute({
  method: "post",
  path: "/v1/tokens",
  summary: "Create a personal API token for the CLI or CI; the token is shown only in this response",
  tag: "auth",
  access: { kind: "user" },
  body: z
    .object({
      name: z.string().trim().min(1).max(100),
      expires_in_days: z.number().int().min(1).max(366).nullable().default(90).describe("null: never expires"),
    })
    .strict(),
  example: { name: "ci", expires_in_days: 90 },
  response: tokenSchema.extend({ token: z.string().describe("shown once; store it now") }),
  status: 201,
  async handler(c, { body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const id = newId("token");
    const generated = await generateToken("api");
    const expiresAt = body.expires_in_days === null ? null : new Date(Date.now() + body.expires_in_days * 86_400_000);
    const [[row]] = await db.batch([
      db
        .insert(apiTokens)
        .values({ id, userId: auth.user.id, kind: "api", name: body.name, tokenHash: generated.hash, tokenHint: generated.hint, expiresAt })
        .returning(),
      auditInsert(db, auth, { action: "token.created", resourceType: "api_token", resourceId: id, metadata: { name: body.name } }),
    ]);
    c.header("Cache-Control", "no-store");
    return c.json({ ...toApiToken(row!), token: generated.token }, 201);
  },
});

export const revokeToken = defineRoute({
  method: "delete",
  path: "/v1/tokens/:id",
  summary: "Revoke one of your API tokens",
  tag: "auth",
  access: { kind: "user" },
  params: tokenParams,
  status: 204,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const revocable = and(eq(apiTokens.id, params.id), eq(apiTokens.userId, auth.user.id), eq(apiTokens.kind, "api"), isNull(apiTokens.revokedAt));
    const [, revoked] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "token.revoked", resourceType: "api_token", resourceId: params.id },
        { from: sql`FROM ${apiTokens} WHERE ${revocable}`, teamId: sql`NULL`, projectId: sql`NULL` },
      ),
      db.update(apiTokens).set({ revokedAt: new Date() }).where(revocable).returning({ id: apiTokens.id }),
    ]);
    if (revoked.length === 0) throw new ApiError("NOT_FOUND", `token ${params.id} not found`);
    forgetCachedAuth();
    return c.body(null, 204);
  },
});
