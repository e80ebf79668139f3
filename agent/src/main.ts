// stagely-agent --config /etc/stagely/agent.json [--work-dir DIR] [--project-prefix PREFIX] [--health-timeout S]
//
// The Stagely agent (docs/agent.md): connects to Core with the token from its configuration file and runs the BUILD
// and DEPLOY jobs Core sends on this machine's Docker engine until TERMINATE. On a VM, systemd runs it
// (stagely-agent.service, written by cloud-init) and restarts it after a crash.
//   --config FILE          agent.json: agent_id, token, core_url, role, job_id or environment_id (keep it 0600)
//   --work-dir DIR         checkouts, compose projects and job state (default /var/lib/stagely)
//   --project-prefix P     compose project names are <P><environment id> (default stg_); lets several agents share
//                          one engine, as the local cloud's simulated VMs do
//   --health-timeout S     how long a deploy waits for its services to be healthy (default 300)
//   --version              prints the version
// Exit codes: 0 after TERMINATE (or revoked, or Core unreachable for 15 minutes), 3 when Core refuses the agent
// (wrong agent id or protocol version: a restart cannot help), anything else is a crash.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { agentConfigSchema } from "../../src/providers/cloud-init.ts";
import { startAgent } from "./agent.ts";
import { startTunnel, type Tunnel } from "./tunnel/tunnel.ts";
import { AGENT_VERSION } from "./version.ts";

const { values } = parseArgs({
  options: {
    config: { type: "string", default: "/etc/stagely/agent.json" },
    "work-dir": { type: "string", default: "/var/lib/stagely" },
    "project-prefix": { type: "string", default: "stg_" },
    "health-timeout": { type: "string", default: "300" },
    version: { type: "boolean", default: false },
  },
});

const say = (line: string) => console.log(`[stagely-agent] ${line}`);

if (values.version) {
  console.log(AGENT_VERSION);
  process.exit(0);
}

function fail(message: string): never {
  console.error(`[stagely-agent] ${message}`);
  process.exit(2);
}

let text: string;
try {
  text = readFileSync(values.config, "utf8");
} catch (error) {
  fail(`cannot read the configuration ${values.config}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
}
let json: unknown;
try {
  json = JSON.parse(text);
} catch {
  fail(`${values.config} is not JSON`);
}
const parsed = agentConfigSchema.safeParse(json);
if (!parsed.success) fail(`${values.config}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(file)"} ${i.message}`).join("; ")}`);
const healthTimeoutSeconds = Number(values["health-timeout"]);
if (!Number.isInteger(healthTimeoutSeconds) || healthTimeoutSeconds < 1) fail("--health-timeout must be a whole number of seconds");
if (!/^[a-z0-9][a-z0-9_-]*$/.test(values["project-prefix"])) fail("--project-prefix may hold lowercase letters, digits, _ and - only");

const config = parsed.data;
say(`${AGENT_VERSION} starting: ${config.role} agent ${config.agent_id} for ${config.job_id ?? config.environment_id ?? "no job"}, Core at ${config.core_url}`);
const agent = await startAgent({
  config,
  workDir: values["work-dir"],
  projectPrefix: values["project-prefix"],
  healthTimeoutSeconds,
  log: say,
});
let tunnel: Tunnel | null = null;
if (config.role === "preview") {
  // The environment's services: `docker compose -p <name>` on this machine; agent.resolveService finds their ports.
  say(`environment ${config.environment_id} runs as compose project ${agent.project.name} (${agent.project.dir})`);
  // Visitors' requests (protocol v1.1): only what the last DEPLOY exposed, at 127.0.0.1:<published port>.
  tunnel = startTunnel({ coreUrl: config.core_url, token: config.token, agentId: config.agent_id, resolveTarget: agent.resolveExposed, log: say });
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping`);
    void agent.stop();
  });
}

const code = await agent.done;
await tunnel?.stop();
say(`exiting with code ${code}`);
process.exit(code);
