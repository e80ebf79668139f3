// npm run agent:sim -- [--token <agent token> | --dev builder|preview] [options]
//
// Runs one simulated agent against Core (see scripts/agent-sim/agent.ts and docs/agent-protocol.md).
//   --core-url URL          Core's base URL (default http://127.0.0.1:8787, what `npm run dev` serves)
//   --token TOKEN           the agent token; better: STAGELY_AGENT_TOKEN in the environment (arguments show in `ps`)
//   --dev builder|preview   development only: create an agent with POST /v1/dev/agents instead of passing a token;
//                           authenticates with STAGELY_TOKEN (a user's API token), else the one `npm run dev` keeps
//                           in .stagely/dev-token
//   --secret KEY=VALUE      with --dev: a project secret (repeatable), to watch it being masked in the logs
//   --build                 with --dev builder: queue a BUILD for the agent's job right away
//   --speed N               1 = realistic pace (default), 10 = ten times faster, 0 = as fast as possible
//   --lines-per-build N     log lines per build (default 200)
//   --fail-builds           builds fail with exit code 2
//   --heartbeat-interval S  override the interval Core announces
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startSimulatedAgent } from "./agent.ts";

const { values } = parseArgs({
  options: {
    "core-url": { type: "string", default: "http://127.0.0.1:8787" },
    token: { type: "string" },
    dev: { type: "string" },
    secret: { type: "string", multiple: true, default: [] },
    build: { type: "boolean", default: false },
    speed: { type: "string", default: "1" },
    "lines-per-build": { type: "string", default: "200" },
    "fail-builds": { type: "boolean", default: false },
    "heartbeat-interval": { type: "string" },
  },
});

const coreUrl = values["core-url"].replace(/\/+$/, "");
const say = (line: string) => console.log(`[agent-sim] ${line}`);
const devTokenFile = join(import.meta.dirname, "..", "..", ".stagely", "dev-token");

/** The development routes take a signed-in user's API token. */
function devHeaders(): Record<string, string> {
  const token = process.env.STAGELY_TOKEN ?? (existsSync(devTokenFile) ? readFileSync(devTokenFile, "utf8").trim() : undefined);
  if (!token) throw new Error(`--dev needs a user's API token: set STAGELY_TOKEN, or run \`npm run dev\` once (it writes ${devTokenFile})`);
  return { "content-type": "application/json", authorization: `Bearer ${token}` };
}

async function devAgent(role: string): Promise<{ token: string; agentId: string; jobId: string | null }> {
  if (role !== "builder" && role !== "preview") throw new Error("--dev takes builder or preview");
  const secrets = Object.fromEntries(
    values.secret.map((pair) => {
      const at = pair.indexOf("=");
      if (at < 1) throw new Error(`--secret ${pair.split("=")[0]}: expected KEY=VALUE`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
  const response = await fetch(`${coreUrl}/v1/dev/agents`, {
    method: "POST",
    headers: devHeaders(),
    body: JSON.stringify({ role, secrets }),
  });
  if (response.status === 404) {
    throw new Error("POST /v1/dev/agents is not available: Core must be `npm run dev` (STAGELY_ENV=development, built with STAGELY_DEV_ROUTES)");
  }
  if (response.status === 401) throw new Error("POST /v1/dev/agents refused the API token (STAGELY_TOKEN or .stagely/dev-token): use a valid one");
  if (!response.ok) throw new Error(`POST /v1/dev/agents answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { agent_id: string; token: string; build_job_id: string | null; environment_id: string };
  say(`created ${role} agent ${body.agent_id} (${body.build_job_id ? `build job ${body.build_job_id}` : `environment ${body.environment_id}`})`);
  say(
    `send it a command: curl -X POST ${coreUrl}/v1/dev/agents/${body.agent_id}/commands -H "Authorization: Bearer $STAGELY_TOKEN" -H 'content-type: application/json' -d '<BUILD|DEPLOY|TERMINATE JSON>'`,
  );
  return { token: body.token, agentId: body.agent_id, jobId: body.build_job_id };
}

async function queueBuild(agentId: string, jobId: string): Promise<void> {
  const response = await fetch(`${coreUrl}/v1/dev/agents/${agentId}/commands`, {
    method: "POST",
    headers: devHeaders(),
    body: JSON.stringify({
      type: "BUILD",
      job_id: jobId,
      context: { repo_url: "https://github.com/stagely-dev/app", commit_hash: "0000000", branch: "dev", clone_token: null },
      build_config: { context_path: ".", dockerfile: "Dockerfile", target_image: "registry.local/app:dev", platform: "linux/amd64" },
      registry_auth: null,
    }),
  });
  if (!response.ok) throw new Error(`queueing a BUILD answered ${response.status}: ${await response.text()}`);
  say(`queued a BUILD for ${jobId}; follow its lines with: curl -N ${coreUrl}/v1/jobs/${jobId}/logs/stream (with a user token)`);
}

let token = values.token ?? process.env.STAGELY_AGENT_TOKEN;
let agentId: string | undefined;
let buildJob: string | null = null;
if (values.dev) ({ token, agentId, jobId: buildJob } = await devAgent(values.dev));
if (!token) {
  console.error("an agent token is required: --token, STAGELY_AGENT_TOKEN, or --dev builder|preview");
  process.exit(2);
}

const speed = Number(values.speed);
const agent = startSimulatedAgent({
  coreUrl,
  token,
  agentId,
  speed: speed === 0 ? Infinity : speed,
  failBuilds: values["fail-builds"],
  linesPerBuild: Number(values["lines-per-build"]),
  heartbeatIntervalSeconds: values["heartbeat-interval"] ? Number(values["heartbeat-interval"]) : undefined,
});
if (values.build) {
  if (!agentId || !buildJob) throw new Error("--build needs --dev builder");
  await queueBuild(agentId, buildJob);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping`);
    void agent.stop();
  });
}
await agent.done;
const stats = agent.stats();
say(`stopped after ${stats.connects} connection(s); ${stats.linesAcked} lines acknowledged, ${stats.unacked} not`);
