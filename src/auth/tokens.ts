import { customAlphabet } from "nanoid";
import { sha256Hex } from "../lib/crypto.ts";

// 32 characters from 62 symbols: about 190 bits.
const secret = customAlphabet("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 32);

/**
 * API tokens and sessions authenticate API calls. A sign-in link's code is never a bearer token: it is only exchanged,
 * once, for a session. Share tokens (`stg_shr_`) open one preview and nothing else.
 */
export const tokenPrefixes = { api: "stg_pat_", session: "stg_ses_", sign_in_link: "stg_lnk_", share: "stg_shr_" } as const;
export type TokenKind = keyof typeof tokenPrefixes;

/** Tokens that authenticate API requests (never a sign-in link or a share token). */
export const TOKEN_PATTERN = /^stg_(pat|ses)_[0-9A-Za-z]{32}$/;
export const SESSION_TOKEN_PATTERN = /^stg_ses_[0-9A-Za-z]{32}$/;
export const SIGN_IN_LINK_PATTERN = /^stg_lnk_[0-9A-Za-z]{32}$/;
export const SHARE_TOKEN_PATTERN = /^stg_shr_[0-9A-Za-z]{32}$/;

export interface NewToken {
  /** Shown once to the user; never stored. */
  token: string;
  hash: string;
  /** The first characters, enough to recognise it in a list, not to use it. */
  hint: string;
}

export async function generateToken(kind: TokenKind): Promise<NewToken> {
  const token = `${tokenPrefixes[kind]}${secret()}`;
  return { token, hash: await sha256Hex(token), hint: `${token.slice(0, 12)}…` };
}

export function hashToken(token: string): Promise<string> {
  return sha256Hex(token);
}
