import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";
import { ApiError } from "../lib/errors.ts";

const WINDOW_SECONDS = 60;

/** Per-token limit on mutating requests (the MUTATION_RATE_LIMITER binding: see wrangler.toml). */
export const limitMutations = createMiddleware<AppEnv>(async (c, next) => {
  const { success } = await c.env.MUTATION_RATE_LIMITER.limit({ key: c.get("auth").tokenId });
  if (!success) {
    throw new ApiError("RATE_LIMITED", `too many changes with this token; try again in ${WINDOW_SECONDS} s`, {
      headers: { "Retry-After": String(WINDOW_SECONDS) },
    });
  }
  await next();
});
