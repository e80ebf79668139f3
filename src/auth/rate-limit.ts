import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";
import { ApiError } from "../lib/errors.ts";

/** Every limiter in wrangler.toml [[ratelimits]] counts over 60 s. */
const WINDOW_SECONDS = 60;

/** The Workers rate-limit bindings (wrangler.toml [[ratelimits]]). */
export type RateLimiterName = { [K in keyof Env]-?: Env[K] extends RateLimit ? K : never }[keyof Env];

function rateLimited(what: string): ApiError {
  return new ApiError("RATE_LIMITED", `${what}; try again in ${WINDOW_SECONDS} s`, { headers: { "Retry-After": String(WINDOW_SECONDS) } });
}

/**
 * Per-user limit on mutating requests (MUTATION_RATE_LIMITER), keyed by the user rather than the token, so minting
 * more tokens buys no more changes.
 */
export const limitMutations = createMiddleware<AppEnv>(async (c, next) => {
  const { success } = await c.env.MUTATION_RATE_LIMITER.limit({ key: c.get("auth").user.id });
  if (!success) throw rateLimited("too many changes by this account");
  await next();
});

/**
 * Whom a per-IP limit counts: an IPv4 address as it is, an IPv6 address as its /64 (one customer line gets a whole
 * /64, so counting single IPv6 addresses would give each client billions of budgets).
 */
export function clientKey(ip: string): string {
  if (ip.includes(".") || !ip.includes(":")) return ip;
  const [head = "", tail, ...more] = ip.toLowerCase().split("::");
  if (more.length > 0) return ip;
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((group) => Number.parseInt(group, 16).toString(16)).join(":")}::/64`;
}

/**
 * Per-client-IP limit for routes that take no Stagely token. The address is `CF-Connecting-IP`, which Cloudflare
 * sets on every request it proxies (a client cannot choose it); a request without it did not come through
 * Cloudflare (tests calling the Worker directly) and is not counted.
 */
export function limitPerIp(limiter: RateLimiterName) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const ip = c.req.header("CF-Connecting-IP");
    if (ip) {
      const { success } = await c.env[limiter].limit({ key: clientKey(ip) });
      if (!success) throw rateLimited("too many requests from your address");
    }
    await next();
  });
}
