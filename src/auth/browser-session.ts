import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import * as z from "zod";
import { configOf, type AppContext } from "../app-env.ts";
import { hmacSha256Hex, timingSafeEqual } from "../lib/crypto.ts";
import { ApiError } from "../lib/errors.ts";

/**
 * The dashboard's sign-in: the session token lives in an HttpOnly cookie instead of an Authorization header. Because
 * a browser sends cookies on requests other sites start, every cookie-authenticated change must also prove it comes
 * from our own pages: the browser's Sec-Fetch-Site (or Origin) must say same-origin, and the X-CSRF-Token header must
 * carry the CSRF token, an HMAC of the session token that our pages read from a second, script-readable cookie (a
 * cookie planted by another site cannot match a session it does not know).
 */
export const SESSION_COOKIE = "stagely_session";
export const CSRF_COOKIE = "stagely_csrf";
export const CSRF_HEADER = "X-CSRF-Token";

/** Where a browser sign-in may send the user afterwards: a path on this origin (never `//host` or `/\host`). */
export const returnPath = z
  .string()
  .max(500)
  .regex(/^\/(?![/\\])[\x21-\x7e]*$/, "must be a path on this site, like /t/acme/environments");

function csrfToken(c: AppContext, sessionToken: string): Promise<string> {
  // A key of its own, derived from the encryption key, so no extra secret has to be configured.
  return hmacSha256Hex(`csrf:${configOf(c).ENCRYPTION_KEY}`, sessionToken);
}

const secure = (c: AppContext) => new URL(c.req.url).protocol === "https:";

/** Sets the session and CSRF cookies for a session token that expires at `expiresAt`. */
export async function startBrowserSession(c: AppContext, sessionToken: string, expiresAt: Date): Promise<void> {
  const common = { path: "/", secure: secure(c), expires: expiresAt } as const;
  setCookie(c, SESSION_COOKIE, sessionToken, { ...common, httpOnly: true, sameSite: "Lax" });
  setCookie(c, CSRF_COOKIE, await csrfToken(c, sessionToken), { ...common, sameSite: "Strict" });
  c.header("Cache-Control", "no-store");
}

export function endBrowserSession(c: AppContext): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: secure(c) });
  deleteCookie(c, CSRF_COOKIE, { path: "/", secure: secure(c) });
}

export function sessionCookieOf(c: AppContext): string | undefined {
  return getCookie(c, SESSION_COOKIE);
}

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

/** Refuses a cookie-authenticated change that another site could have started (403, nothing changed). */
export async function checkCsrf(c: AppContext, sessionToken: string): Promise<void> {
  if (safeMethods.has(c.req.method)) return;
  const site = c.req.header("Sec-Fetch-Site");
  const origin = c.req.header("Origin");
  const sameOrigin = site ? site === "same-origin" : origin === new URL(c.req.url).origin;
  if (!sameOrigin) throw new ApiError("FORBIDDEN", "cross-site request refused: changes with the session cookie must come from this site's own pages");
  const sent = c.req.header(CSRF_HEADER);
  if (!sent || !timingSafeEqual(sent, await csrfToken(c, sessionToken))) {
    throw new ApiError("FORBIDDEN", `missing or wrong ${CSRF_HEADER} header: send the value of the ${CSRF_COOKIE} cookie with every change`);
  }
}
