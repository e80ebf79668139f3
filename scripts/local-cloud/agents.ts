import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeComposeProjects } from "../../agent/src/docker.ts";
import { runProcess } from "../../agent/src/run-process.ts";
import { startAgentProcess } from "./agent-process.ts";
import type { StartAgent } from "./server.ts";

/** The agent simulator, loaded on first use so the local cloud runs without it when agents are off. */
export const simulatedAgent: StartAgent = async (agent) => {
  const { startSimulatedAgent } = await import("../agent-sim/agent.ts");
  return startSimulatedAgent({ coreUrl: agent.core_url, token: agent.token, agentId: agent.agent_id });
};

/**
 * The real agent for each VM, as a supervised process (scripts/local-cloud/agent-process.ts) on this machine's Docker
 * engine. A VM is a folder of its own under `baseDir` and a compose project prefix of its own; terminating the VM
 * stops its agent and removes everything its compose projects left, as a real VM takes its containers with it.
 */
export function realAgents(options: { baseDir?: string; entry?: string; log: (line: string) => void }): StartAgent {
  const baseDir = options.baseDir ?? join(tmpdir(), "stagely-local-vms");
  return (agent) => {
    const short = agent.agent_id.slice(4, 12);
    const prefix = `stg_${short}_`;
    const dir = join(baseDir, agent.agent_id);
    const vm = startAgentProcess({ config: agent, dir, projectPrefix: prefix, entry: options.entry, log: (line) => options.log(`${short}: ${line}`) });
    return {
      async stop() {
        await vm.stop();
        await removeComposeProjects((project) => project.startsWith(prefix));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };
}

/** Whether a Docker engine answers here (`docker info`), and its version. */
export async function dockerEngine(): Promise<string | null> {
  try {
    const info = await runProcess("docker", ["info", "--format", "{{.ServerVersion}}"], { captureStdout: true, signal: AbortSignal.timeout(15_000) });
    return info.code === 0 ? info.stdout.trim() || null : null;
  } catch {
    return null;
  }
}

/** The real agent when a Docker engine answers, the simulator otherwise; says which. */
export async function defaultAgents(log: (line: string) => void): Promise<StartAgent> {
  const engine = await dockerEngine();
  if (engine) {
    log(`VMs run the real agent (agent/src/main.ts) on this machine's Docker engine ${engine}`);
    return realAgents({ log });
  }
  log("VMs run the agent simulator: no Docker engine answers `docker info` (install and start Docker for real builds and deploys)");
  return simulatedAgent;
}
