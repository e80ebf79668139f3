import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { docker, ensureBaseImage, requireDocker } from "../../test/system/docker-fixtures.ts";
import { freePort } from "../lib/stack.ts";
import { defaultAgents, dockerEngine, realAgents } from "./agents.ts";

// The local cloud's VMs on this machine's engine: one supervised agent process per VM, and everything of its compose
// projects gone with the VM, as a real VM takes its containers with it.

const hasDocker = requireDocker("the local cloud's real-agent tests (scripts/local-cloud/agents.test.ts)");
const baseDir = mkdtempSync(join(tmpdir(), "stagely-vms-test-"));
afterAll(() => rmSync(baseDir, { recursive: true, force: true }));

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(!hasDocker)("the local cloud's real agents", () => {
  it("says it runs the real agent when an engine answers", async () => {
    expect(await dockerEngine()).toMatch(/^\d+\.\d+/);
    const said: string[] = [];
    await defaultAgents((line) => said.push(line));
    expect(said).toEqual([expect.stringMatching(/^VMs run the real agent \(agent\/src\/main\.ts\) on this machine's Docker engine \d+/)]);
  });

  it("runs a VM's agent as a process with its own folder, and removes its compose projects when the VM goes", async () => {
    ensureBaseImage();
    const lines: string[] = [];
    const start = realAgents({ baseDir, log: (line) => lines.push(line) });
    const agentId = "agt_localcloud00test";
    const vm = await start({ agent_id: agentId, token: `stg_agt_localcloud00test_${"0".repeat(64)}`, core_url: `http://127.0.0.1:${await freePort()}`, role: "preview", environment_id: "env_localcloud00test" });
    await waitFor(() => lines.some((l) => l.includes("starting: preview agent agt_localcloud00test")), "the agent to start");
    expect(existsSync(join(baseDir, agentId, "agent.json"))).toBe(true);
    // What a deploy of this VM would have left: a container, a network and a volume of its compose project.
    const project = "stg_localclo_env_localcloud00test";
    const label = `com.docker.compose.project=${project}`;
    docker("network", "create", "--label", label, `${project}_default`);
    docker("volume", "create", "--label", label, `${project}_data`);
    docker("run", "-d", "--label", label, "--network", `${project}_default`, "stagely-test/busybox:1", "sleep", "1000");
    await vm.stop();
    for (const kind of [["ps", "-aq"], ["network", "ls", "-q"], ["volume", "ls", "-q"]]) expect(docker(...kind, "--filter", `label=${label}`)).toBe("");
    expect(existsSync(join(baseDir, agentId))).toBe(false);
    expect(lines.some((l) => l.includes("SIGTERM: stopping"))).toBe(true);
  }, 60_000);
});
