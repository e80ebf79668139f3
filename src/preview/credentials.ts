/**
 * Stagely's own credentials on a preview host, and how they are kept from the app: the session cookie, the
 * `X-Stagely-Token` header and the `stagely_share` query parameter are read here and removed before the request
 * reaches the app. The app's own cookies and `Authorization` pass through untouched.
 */

/** On https the `__Host-` prefix makes browsers refuse the cookie from a sibling host (no Domain, Secure, Path=/). */
export const SECURE_SESSION_COOKIE = "__Host-stagely_preview";
/** Local development over http (`*.preview.localhost`). */
export const LOCAL_SESSION_COOKIE = "stagely_preview";
export const TOKEN_HEADER = "X-Stagely-Token";
export const SHARE_PARAM = "stagely_share";
/** Paths under this prefix are Stagely's own on every preview host (sign-in, logs); the app never sees them. */
export const RESERVED_PREFIX = "/__stagely/";

const sessionCookieNames = new Set([SECURE_SESSION_COOKIE, LOCAL_SESSION_COOKIE]);

export function sessionCookieName(secure: boolean): string {
  return secure ? SECURE_SESSION_COOKIE : LOCAL_SESSION_COOKIE;
}

function cookiePairs(header: string | null | undefined): { name: string; raw: string; value: string }[] {
  if (!header) return [];
  return header
    .split(";")
    .map((raw) => raw.trim())
    .filter(Boolean)
    .map((raw) => {
      const at = raw.indexOf("=");
      return { name: at < 0 ? raw : raw.slice(0, at).trim(), raw, value: at < 0 ? "" : raw.slice(at + 1).trim() };
    });
}

/** Every value of Stagely's session cookie in a Cookie header (a duplicate from a sibling host may come along). */
export function sessionCookieValues(header: string | null | undefined): string[] {
  return cookiePairs(header)
    .filter((c) => sessionCookieNames.has(c.name))
    .map((c) => c.value);
}

/** The Cookie header without Stagely's session cookie (null when nothing is left), the app's cookies as they were. */
export function withoutSessionCookie(header: string | null | undefined): string | null {
  const kept = cookiePairs(header).filter((c) => !sessionCookieNames.has(c.name));
  return kept.length > 0 ? kept.map((c) => c.raw).join("; ") : null;
}

/** Path and query without the share parameter; everything else exactly as the visitor sent it. */
export function pathWithoutShare(url: URL): string {
  const kept = url.search
    .slice(1)
    .split("&")
    .filter((pair) => pair !== "" && queryName(pair) !== SHARE_PARAM);
  return `${url.pathname}${kept.length > 0 ? `?${kept.join("&")}` : ""}`;
}

function queryName(pair: string): string {
  const raw = pair.split("=")[0]!.replaceAll("+", " ");
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // malformed %-escapes: not our parameter, and passed on as sent
  }
}

/** A same-origin path to send a visitor back to (never another origin: `//host` and `/\host` are refused). */
export function safeReturnPath(path: string | undefined | null): string {
  if (!path || !path.startsWith("/") || path.startsWith("//") || path.startsWith("/\\") || path.length > 2000) return "/";
  return path;
}
