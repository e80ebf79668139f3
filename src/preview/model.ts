import * as z from "zod";
import type { previewShareTokens } from "../db/schema.ts";
import { idOf, iso, timestamp } from "../lib/schemas.ts";

export const shareTokenParams = z.object({ id: idOf("shr") });

export const shareTokenSchema = z.object({
  id: z.string(),
  environment_id: z.string(),
  name: z.string(),
  token_hint: z.string().describe("the token's first characters, to recognise it"),
  expires_at: timestamp,
  revoked_at: timestamp.nullable(),
  created_by: z.string().nullable(),
  created_at: timestamp,
});

export const createdShareTokenSchema = shareTokenSchema.extend({
  token: z.string().describe("shown once: send it as X-Stagely-Token, or open `url`"),
  url: z.string().describe("the preview's address with the token as `stagely_share`: opening it sets a cookie for that preview only"),
});

export function toApiShareToken(row: typeof previewShareTokens.$inferSelect): z.infer<typeof shareTokenSchema> {
  return {
    id: row.id,
    environment_id: row.environmentId,
    name: row.name,
    token_hint: row.tokenHint,
    expires_at: iso(row.expiresAt)!,
    revoked_at: iso(row.revokedAt),
    created_by: row.createdBy,
    created_at: iso(row.createdAt)!,
  };
}
