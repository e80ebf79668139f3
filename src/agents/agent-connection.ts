import { DurableObject } from "cloudflare:workers";

/**
 * One instance per VM agent: will hold the agent's WebSocket (Hibernation API) and its state.
 * The protocol arrives with the agent-gateway issue; until then the object refuses connections plainly.
 */
export class AgentConnection extends DurableObject<Env> {
  override async fetch(): Promise<Response> {
    return Response.json(
      { error: { code: "NOT_IMPLEMENTED", message: "the agent gateway is not available in this version" } },
      { status: 501 },
    );
  }
}
