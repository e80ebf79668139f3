import { env, exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import type { TunnelTarget, Upstream } from "../../agent/src/tunnel/tunnel.ts";
import { inProcessUpstream } from "../in-process-upstream.ts";
import { issueAgentToken, agentStub } from "../../src/agents/issue-token.ts";
import { environments, workflowRuns } from "../../src/db/schema.ts";
import { newId, newSubdomainHash } from "../../src/lib/ids.ts";
import { Logger } from "../../src/lib/logger.ts";
import { publishPreviewHosts } from "../../src/preview/snapshot.ts";
import { previewTunnelStub } from "../../src/preview/stubs.ts";
import { startSimulatedAgent, type SimulatedAgent } from "../../scripts/agent-sim/agent.ts";
import { db } from "../db.ts";
import { seedProject, seedTeam, seedUser, type SeededTeam, type SeededUser } from "../harness.ts";

export const EXPOSURE = { expose: { service: "web", port: 3000 }, routes: [{ name: "api", service: "api", port: 8080 }] };

/** Opens an agent's socket through the Worker (as AgentDriver does). */
export async function openThroughWorker(url: string, headers: Record<string, string>): Promise<WebSocket> {
  const response = await exports.default.fetch(url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket", ...headers } });
  if (!response.webSocket) throw new Error(`connect refused: ${response.status}`);
  response.webSocket.accept();
  return response.webSocket;
}

export interface ServedPreview {
  owner: SeededUser;
  team: SeededTeam;
  projectId: string;
  environmentId: string;
  runId: string;
  hash: string;
  agentId: string;
  agent: SimulatedAgent;
  /** `https://<hash>.<PREVIEW_DOMAIN>` (or a route's host). */
  url(path?: string, route?: string): string;
}

/**
 * A ready preview served end to end: a team, a project (access as given), a ready environment whose last run exposes
 * `web:3000` and an `api` route, its preview agent (the simulator, dialing the real Worker) with its tunnel up.
 */
export async function servePreview(
  options: { access?: "team" | "public"; upstream?: Upstream; owner?: SeededUser; targets?: TunnelTarget[] } = {},
): Promise<ServedPreview> {
  const owner = options.owner ?? (await seedUser());
  const team = await seedTeam([{ user: owner, role: "owner" }]);
  const project = await seedProject(team.id, { previewAccess: options.access ?? "public" });
  const environmentId = newId("environment");
  const runId = newId("workflowRun");
  const hash = newSubdomainHash();
  await db.batch([
    db.insert(environments).values({
      id: environmentId,
      projectId: project.id,
      prNumber: 1 + Math.floor(Math.random() * 1_000_000),
      branchName: "feature",
      commitHash: "b".repeat(40),
      subdomainHash: hash,
      size: "small",
      region: "local",
      status: "ready",
    }),
    db.insert(workflowRuns).values({
      id: runId,
      environmentId,
      trigger: "pr_opened",
      commitHash: "b".repeat(40),
      status: "completed",
      result: "success",
      completedAt: new Date(),
      config: { version: 2, builds: [], preview: { size: "small", lifecycle: { on_start: [] }, ...EXPOSURE } },
    }),
  ]);
  const { agentId, token } = await issueAgentToken(env, db, { role: "preview", environmentId });
  await publishPreviewHosts(env, db, [environmentId], new Logger("warn"));
  const upstream = options.upstream ?? inProcessUpstream();
  const agent = startSimulatedAgent({
    coreUrl: "https://stagely.test",
    token,
    speed: Number.POSITIVE_INFINITY,
    log: () => {},
    openSocket: openThroughWorker,
    resolveTarget: (target) => {
      options.targets?.push(target);
      return upstream;
    },
  });
  await agentStub(env, agentId).sendCommand({ type: "DEPLOY", job_id: runId, images: { web: "web:1", api: "api:1" }, compose_file: "services: {}", preview: EXPOSURE });
  await waitFor("the tunnel to be up", () => previewTunnelStub(env, agentId).isConnected());
  const domain = env.PREVIEW_DOMAIN;
  return {
    owner,
    team,
    projectId: project.id,
    environmentId,
    runId,
    hash,
    agentId,
    agent,
    url: (path = "/", route) => `https://${route ? `${route}--` : ""}${hash}.${domain}${path}`,
  };
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false | null> | T | undefined | false | null, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false && value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A request to a preview host through the real Worker. */
export function visit(url: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(url, { redirect: "manual", ...init }));
}

export async function environmentRow(id: string) {
  const [row] = await db.select().from(environments).where(eq(environments.id, id));
  return row!;
}
