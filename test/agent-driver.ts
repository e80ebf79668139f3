import { exports } from "cloudflare:workers";
import { inProcessUpstream } from "./in-process-upstream.ts";
import { startSimulatedAgent, type SimulatedAgent, type SimulatedAgentOptions } from "../scripts/agent-sim/agent.ts";
import type { AgentConfig } from "../src/providers/cloud-init.ts";
import { eq } from "drizzle-orm";
import { agentConnections } from "../src/db/schema.ts";
import { db } from "./db.ts";
import { fakeUrl } from "./fakes/urls.ts";

/**
 * Plays the VMs' agents in tests: every VM the local cloud boots is given a running agent simulator with the token
 * from its cloud-init, dialing the real Worker (through `exports`, as workerd tests cannot open a port).
 */
export class AgentDriver {
  readonly agents = new Map<string, SimulatedAgent>();
  private readonly seen = new Set<string>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly options: Partial<SimulatedAgentOptions>;
  /**
   * Decides per booted VM whether its agent comes up (false: a crashed VM that never dials in), optionally with
   * options of its own (e.g. `failBuilds`).
   */
  private readonly accept: (agent: AgentConfig) => boolean | Partial<SimulatedAgentOptions>;

  constructor(options: Partial<SimulatedAgentOptions> = {}, accept: (agent: AgentConfig) => boolean | Partial<SimulatedAgentOptions> = () => true) {
    this.options = options;
    this.accept = accept;
  }

  start(): this {
    this.timer = setInterval(() => void this.poll(), 50);
    return this;
  }

  private async poll(): Promise<void> {
    try {
      await this.startNewAgents();
    } catch (error) {
      console.error("agent driver:", error);
    }
  }

  private async startNewAgents(): Promise<void> {
    const response = await fetch(`${fakeUrl("local-cloud")}/_fake/agents`);
    const { started } = (await response.json()) as { started: AgentConfig[] };
    for (const config of started) {
      if (this.seen.has(config.agent_id)) continue;
      this.seen.add(config.agent_id);
      // The local cloud is shared by every test file: only this file's Worker issued the agents it knows.
      const [known] = await db.select({ id: agentConnections.agentId }).from(agentConnections).where(eq(agentConnections.agentId, config.agent_id));
      if (!known) continue;
      const decision = this.accept(config);
      if (decision === false) continue;
      this.agents.set(
        config.agent_id,
        startSimulatedAgent({
          coreUrl: "https://stagely.test",
          token: config.token,
          speed: Number.POSITIVE_INFINITY,
          linesPerBuild: 20,
          log: () => {},
          // Workerd cannot open ports: exposed services are the test app, called in-process.
          resolveTarget: () => inProcessUpstream(),
          ...this.options,
          ...(decision === true ? {} : decision),
          openSocket: async (url, headers) => {
            const res = await exports.default.fetch(url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket", ...headers } });
            if (!res.webSocket) throw new Error(`connect refused: ${res.status}`);
            res.webSocket.accept();
            return res.webSocket;
          },
        }),
      );
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.agents.values()].map((agent) => agent.stop()));
  }
}
