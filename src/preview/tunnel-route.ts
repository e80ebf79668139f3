import { Hono } from "hono/tiny";
import type { AppEnv } from "../app-env.ts";
import { agentStub } from "../agents/issue-token.ts";
import { agentIdOfToken, bearerToken } from "../agents/tokens.ts";
import { ApiError } from "../lib/errors.ts";
import { previewTunnelStub } from "./stubs.ts";
import { TUNNEL_AGENT_HEADER } from "./tunnel.ts";

/**
 * `GET /v1/agent/tunnel`: a preview agent's second WebSocket (protocol v1.1), which carries visitors' requests.
 * The same agent token as `/v1/agent/connect`, checked by the agent's own Durable Object (no query); only preview
 * agents have one. The socket is held by the agent's PreviewTunnel object.
 */
export const tunnelRoutes = new Hono<AppEnv>().get("/v1/agent/tunnel", async (c) => {
  const token = bearerToken(c.req.header("Authorization")) ?? "";
  const agentId = agentIdOfToken(token);
  const agent = agentId ? await agentStub(c.env, agentId).authenticate(token) : null;
  if (!agent) {
    throw new ApiError("UNAUTHORIZED", "a valid agent token is required", { headers: { "WWW-Authenticate": 'Bearer realm="agent"' } });
  }
  if (agent.role !== "preview") throw new ApiError("FORBIDDEN", "only preview agents open a tunnel");
  if ((c.req.header("Upgrade") ?? "").toLowerCase() !== "websocket") {
    throw new ApiError("UPGRADE_REQUIRED", "this endpoint only accepts a WebSocket upgrade", { headers: { Upgrade: "websocket" } });
  }
  return previewTunnelStub(c.env, agent.agentId).fetch(
    new Request("https://tunnel/connect", { headers: { Upgrade: "websocket", [TUNNEL_AGENT_HEADER]: agent.agentId } }),
  );
});
