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
//   --expose SERVICE:PORT   with --dev preview: the run exposes this, and a DEPLOY saying so is queued: the preview
//                           becomes ready and serves the built-in test app (test-app.ts) through the agent's tunnel
//   --public                with --expose: anyone may open the preview (default: its team only)
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
    expose: { type: "string" },
    public: { type: "boolean", default: false },
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

/** --expose web:3000 → the exposure a preview's run config and DEPLOY carry. */
function exposure(): { expose: { service: string; port: number }; routes: [] } | undefined {
  if (!values.expose) return undefined;
  const match = /^([A-Za-z0-9_.-]+):(\d{1,5})$/.exec(values.expose);
  if (!match) throw new Error("--expose takes SERVICE:PORT, e.g. web:3000");
  return { expose: { service: match[1]!, port: Number(match[2]) }, routes: [] };
}

async function devAgent(role: string): Promise<{ token: string; agentId: string; jobId: string | null; runId: string; hash: string }> {
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
    body: JSON.stringify({ role, secrets, preview: role === "preview" ? exposure() : undefined, preview_access: values.public ? "public" : "team" }),
  });
  if (response.status === 404) {
    throw new Error("POST /v1/dev/agents is not available: Core must be `npm run dev` (STAGELY_ENV=development, built with STAGELY_DEV_ROUTES)");
  }
  if (response.status === 401) throw new Error("POST /v1/dev/agents refused the API token (STAGELY_TOKEN or .stagely/dev-token): use a valid one");
  if (!response.ok) throw new Error(`POST /v1/dev/agents answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { agent_id: string; token: string; build_job_id: string | null; environment_id: string; run_id: string; subdomain_hash: string };
  say(`created ${role} agent ${body.agent_id} (${body.build_job_id ? `build job ${body.build_job_id}` : `environment ${body.environment_id}`})`);
  say(
    `send it a command: curl -X POST ${coreUrl}/v1/dev/agents/${body.agent_id}/commands -H "Authorization: Bearer $STAGELY_TOKEN" -H 'content-type: application/json' -d '<BUILD|DEPLOY|TERMINATE JSON>'`,
  );
  return { token: body.token, agentId: body.agent_id, jobId: body.build_job_id, runId: body.run_id, hash: body.subdomain_hash };
}

/** Queues the DEPLOY of a preview that exposes something: the agent deploys, reports healthy, opens its tunnel. */
async function queueDeploy(agentId: string, runId: string, hash: string): Promise<void> {
  const preview = exposure()!;
  const response = await fetch(`${coreUrl}/v1/dev/agents/${agentId}/commands`, {
    method: "POST",
    headers: devHeaders(),
    body: JSON.stringify({ type: "DEPLOY", job_id: runId, images: { [preview.expose.service]: "local/app:dev" }, compose_file: "services: {}\n", preview }),
  });
  if (!response.ok) throw new Error(`queueing a DEPLOY answered ${response.status}: ${await response.text()}`);
  say(`queued a DEPLOY; the preview will answer at http://${hash}.preview.localhost:${new URL(coreUrl).port || 80}/ (PREVIEW_DOMAIN=preview.localhost, as npm run dev sets)`);
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
let deploy: { runId: string; hash: string } | undefined;
if (values.dev) {
  const created = await devAgent(values.dev);
  ({ token, agentId, jobId: buildJob } = created);
  if (values.dev === "preview" && values.expose) deploy = { runId: created.runId, hash: created.hash };
}
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
if (deploy) await queueDeploy(agentId!, deploy.runId, deploy.hash);
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
