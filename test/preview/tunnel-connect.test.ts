import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { tunnelCloseCodes } from "../../src/agents/tunnel-protocol.ts";
import { agentStub } from "../../src/agents/issue-token.ts";
import { previewTunnelStub } from "../../src/preview/stubs.ts";
import { createAgent } from "../agents/helpers.ts";
import { waitFor } from "./helpers.ts";

// GET /v1/agent/tunnel: who may open a tunnel, and what the first message must say.

function tunnelRequest(token: string | null, headers: Record<string, string> = { Upgrade: "websocket" }): Promise<Response> {
  return exports.default.fetch("https://stagely.test/v1/agent/tunnel", { headers: { ...headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) } });
}

/** An accepted tunnel socket and what Core says on it. */
async function openTunnel(token: string) {
  const response = await tunnelRequest(token);
  expect(response.status).toBe(101);
  const ws = response.webSocket!;
  ws.accept();
  const messages: string[] = [];
  ws.addEventListener("message", (event) => {
    messages.push(event.data as string);
  });
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve));
  return { ws, messages, closed };
}

const hello = (agentId: string, version = "1.1.0") => JSON.stringify({ type: "TUNNEL_HELLO", version, agent_id: agentId });

describe("opening a tunnel", () => {
  it("a preview agent's token opens it; TUNNEL_HELLO gets TUNNEL_READY with the windows and the exchange limit", async () => {
    const agent = await createAgent("preview");
    const tunnel = await openTunnel(agent.token);
    tunnel.ws.send(hello(agent.agent_id));
    await waitFor("TUNNEL_READY", () => tunnel.messages.length > 0);
    expect(JSON.parse(tunnel.messages[0]!)).toEqual({ type: "TUNNEL_READY", stream_window: 1024 * 1024, connection_window: 32 * 1024 * 1024, max_frame_bytes: 65536, max_streams: Number(env.PREVIEW_MAX_EXCHANGES) });
    expect(await previewTunnelStub(env, agent.agent_id).isConnected()).toBe(true);
    // The keepalive is answered.
    tunnel.ws.send('{"type":"TUNNEL_PING"}');
    await waitFor("TUNNEL_PONG", () => tunnel.messages.includes('{"type":"TUNNEL_PONG"}'));

    // A newer tunnel of the same agent replaces it.
    const newer = await openTunnel(agent.token);
    expect((await tunnel.closed).code).toBe(tunnelCloseCodes.superseded);
    newer.ws.close(1000, "done");
  });

  it("refuses a missing or bad token (401), a builder (403), a request that is no upgrade (426), a revoked agent (401)", async () => {
    expect((await tunnelRequest(null)).status).toBe(401);
    expect((await tunnelRequest(`stg_agt_0000000000000000_${"0".repeat(64)}`)).status).toBe(401);
    const builder = await createAgent("builder");
    const refused = await tunnelRequest(builder.token);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: "FORBIDDEN" } });
    const preview = await createAgent("preview");
    const plain = await tunnelRequest(preview.token, {});
    expect(plain.status).toBe(426);
    expect(plain.headers.get("upgrade")).toBe("websocket");
    await agentStub(env, preview.agent_id).revoke();
    expect((await tunnelRequest(preview.token)).status).toBe(401);
  });

  it("closes for good on a HELLO for another agent (4001) or a protocol before 1.1 (4002); ignores frames before HELLO", async () => {
    const agent = await createAgent("preview");
    const other = await createAgent("preview");
    const wrongAgent = await openTunnel(agent.token);
    wrongAgent.ws.send(hello(other.agent_id));
    expect((await wrongAgent.closed).code).toBe(tunnelCloseCodes.authFailed);
    expect(JSON.parse(wrongAgent.messages[0]!)).toMatchObject({ type: "ERROR", code: "AUTH_FAILED" });

    const oldAgent = await openTunnel(agent.token);
    oldAgent.ws.send(new Uint8Array([3, 0, 0, 0, 0, 1]));
    expect(await previewTunnelStub(env, agent.agent_id).isConnected()).toBe(false);
    oldAgent.ws.send(hello(agent.agent_id, "1.0.0"));
    expect((await oldAgent.closed).code).toBe(tunnelCloseCodes.versionMismatch);
    expect(JSON.parse(oldAgent.messages[0]!)).toMatchObject({ type: "ERROR", code: "VERSION_MISMATCH" });
  });
});
