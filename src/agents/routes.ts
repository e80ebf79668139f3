import { Hono } from "hono/tiny";
import { configOf, type AppEnv } from "../app-env.ts";
import { limitPerIp } from "../auth/rate-limit.ts";
import { ApiError } from "../lib/errors.ts";
import { AGENT_BUNDLE_ASSET, AGENT_DOWNLOAD_PATH, agentRelease, assetRequest } from "./agent-release.ts";
import { agentStub } from "./issue-token.ts";
import { agentIdOfToken, bearerToken } from "./tokens.ts";

/**
 * `GET /v1/agent/connect`: the agent's WebSocket. The token names its agent, so the upgrade goes straight to that
 * agent's Durable Object, which checks the token's hash and accepts the socket: no database query. A refused
 * connect is a 401 and no upgrade. Connects are rate-limited per client IP before any Durable Object is woken, and an
 * agent connecting more often than AGENT_CONNECTS_PER_MINUTE gets a 429.
 *
 * `GET /v1/agent/stagely-agent.mjs`: the agent VMs download (public, like any release download: it holds no
 * secret), with its version and SHA-256 in headers; `GET /v1/agent/release` says the same as JSON. Cloud-init
 * checks the SHA-256 before running the file.
 */
export const agentRoutes = new Hono<AppEnv>()
  .get("/v1/agent/connect", limitPerIp("AGENT_CONNECT_RATE_LIMITER"), async (c) => {
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
  })
  .get(AGENT_DOWNLOAD_PATH, async (c) => {
    const [release, bundle] = await Promise.all([releaseOf(c.env), c.env.ASSETS.fetch(assetRequest(AGENT_BUNDLE_ASSET))]);
    if (!bundle.ok) throw new ApiError("SERVICE_UNAVAILABLE", "the agent bundle is missing from this deployment");
    return new Response(bundle.body, {
      headers: {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Stagely-Agent-Version": release.version,
        "X-Stagely-Agent-Sha256": release.sha256,
      },
    });
  })
  .get("/v1/agent/release", async (c) => {
    const release = await releaseOf(c.env);
    return c.json({ ...release, url: `${configOf(c).PUBLIC_URL}${AGENT_DOWNLOAD_PATH}` });
  });

async function releaseOf(env: Env) {
  try {
    return await agentRelease(env);
  } catch {
    throw new ApiError("SERVICE_UNAVAILABLE", "the agent bundle is missing from this deployment");
  }
}

function unauthorized(): ApiError {
  return new ApiError("UNAUTHORIZED", "a valid agent token is required", { headers: { "WWW-Authenticate": 'Bearer realm="agent"' } });
}
