import * as z from "zod";
import { roles, type apiTokens, type users } from "../db/schema.ts";
import { idOf, iso, timestamp } from "../lib/schemas.ts";

/** How long a sign-in session lasts. */
export const SESSION_DAYS = 30;

export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  github_login: z.string().nullable(),
  avatar_url: z.string().nullable(),
  created_at: timestamp,
});

export function toApiUser(row: typeof users.$inferSelect): z.infer<typeof userSchema> {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    github_login: row.githubLogin,
    avatar_url: row.avatarUrl,
    created_at: iso(row.createdAt)!,
  };
}

export const meSchema = z.object({
  user: userSchema,
  teams: z.array(z.object({ id: z.string(), slug: z.string(), role: z.enum(roles) })),
});

export const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  token_hint: z.string().describe("the token's first characters, to recognise it"),
  expires_at: timestamp.nullable(),
  last_used_at: timestamp.nullable(),
  created_at: timestamp,
});

export const tokenParams = z.object({ id: idOf("tok") });

export function toApiToken(row: typeof apiTokens.$inferSelect): z.infer<typeof tokenSchema> {
  return {
    id: row.id,
    name: row.name,
    token_hint: row.tokenHint,
    expires_at: iso(row.expiresAt),
    last_used_at: iso(row.lastUsedAt),
    created_at: iso(row.createdAt)!,
  };
}
