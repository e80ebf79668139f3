import type { Db } from "../db/client.ts";
import { apiTokens } from "../db/schema.ts";
import { newId } from "../lib/ids.ts";
import { generateToken } from "./tokens.ts";

export const SIGN_IN_LINK_MINUTES = 15;

/**
 * A one-time sign-in link for a user: `<public url>/v1/auth/link?code=…`, valid once and for 15 minutes, that opens a
 * dashboard session. Only code with database access mints one (`npm run dev` for its development user, tests); the
 * code is stored as a hash like every token and can never be used as a bearer token.
 */
export async function mintSignInLink(db: Db, publicUrl: string, userId: string): Promise<string> {
  const code = await generateToken("sign_in_link");
  await db.insert(apiTokens).values({
    id: newId("token"),
    userId,
    kind: "sign_in_link",
    name: "sign-in link",
    tokenHash: code.hash,
    tokenHint: code.hint,
    expiresAt: new Date(Date.now() + SIGN_IN_LINK_MINUTES * 60_000),
  });
  return `${publicUrl.replace(/\/+$/, "")}/v1/auth/link?code=${code.token}`;
}
