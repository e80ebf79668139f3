import { createLocalCloud } from "../../scripts/local-cloud/server.ts";
import type { AgentConfig } from "../../src/providers/cloud-init.ts";
import { json, listen } from "../../scripts/local-github/http.ts";
import type { FakeService } from "./index.ts";

/**
 * The real local cloud (scripts/local-cloud) with a 50 ms boot and a recording agent starter instead of the agent
 * simulator (tests in workerd run the simulator themselves). Test control:
 *   GET /_fake/agents?agent_id=<id> → {started: [agent.json as the VM read it], stopped: n}
 *   GET /_fake/agents               → every agent booted so far, in order, and the ids of those stopped
 */
export const localCloudFake: FakeService = {
  name: "local-cloud",
  async start() {
    const started: AgentConfig[] = [];
    const stopped: string[] = [];
    const cloud = createLocalCloud({
      bootDelayMs: 50,
      startAgent: (agent) => {
        started.push(agent);
        return { stop: async () => void stopped.push(agent.agent_id) };
      },
    });
    const server = await listen(async (req, res) => {
      const url = new URL(req.url ?? "/", "http://local-cloud.fake");
      if (url.pathname !== "/_fake/agents") return cloud.handle(req, res);
      const agentId = url.searchParams.get("agent_id");
      if (agentId === null) return json(res, 200, { started, stopped });
      json(res, 200, {
        started: started.filter((agent) => agent.agent_id === agentId),
        stopped: stopped.filter((id) => id === agentId).length,
      });
    });
    server.on("close", () => void cloud.close());
    return server;
  },
};
