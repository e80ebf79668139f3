import { Hono } from "hono";
import type { AppEnv } from "../app-env.ts";
import { limitPerIp } from "../auth/rate-limit.ts";
import { ApiError } from "../lib/errors.ts";
import { agentStub } from "./issue-token.ts";
import { agentIdOfToken, bearerToken } from "./tokens.ts";

/**
 * `GET /v1/agent/connect`: the agent's WebSocket. The token names its agent, so the upgrade goes straight to that
 * agent's Durable Object, which checks the token's hash and accepts the socket: no database query. A refused
 * connect is a 401 and no upgrade. Connects are rate-limited per client IP before any Durable Object is woken, and an
 * agent connecting more often than AGENT_CONNECTS_PER_MINUTE gets a 429.
 */
export const agentRoutes = new Hono<AppEnv>().get("/v1/agent/connect", limitPerIp("AGENT_CONNECT_RATE_LIMITER"), async (c) => {
  const agentId = agentIdOfToken(bearerToken(c.req.header("Authorization")) ?? "");
  if (!agentId) throw unauthorized();
  const response = await agentStub(c.env, agentId).fetch(c.req.raw);
  if (response.status === 101) return response;
  if (response.status === 426) {
    return c.json(
      { error: { code: "UPGRADE_REQUIRED", message: "this endpoint only accepts a WebSocket upgrade", request_id: c.get("requestId") } },
      426,
      { Upgrade: "websocket" },
    );
  }
  if (response.status === 429) {
    const retryAfter = response.headers.get("Retry-After") ?? "60";
    throw new ApiError("RATE_LIMITED", `too many connects for this agent; reconnect with backoff, after ${retryAfter} s at the earliest`, {
      headers: { "Retry-After": retryAfter },
    });
  }
  c.get("logger").info("agent connect refused", { agent_id: agentId, status: response.status });
  throw unauthorized();
});

function unauthorized(): ApiError {
  return new ApiError("UNAUTHORIZED", "a valid agent token is required", { headers: { "WWW-Authenticate": 'Bearer realm="agent"' } });
}
