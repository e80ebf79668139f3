import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asc, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeComposeProjects } from "../../agent/src/docker.ts";
import { generateToken } from "../../src/auth/tokens.ts";
import { agentConnections, apiTokens, buildJobs, buildLogs, environments, teamMembers, teams, users, workflowRuns } from "../../src/db/schema.ts";
import { hmacSha256Hex } from "../../src/lib/crypto.ts";
import { newId } from "../../src/lib/ids.ts";
import { previewRequest } from "../../scripts/lib/local-preview.ts";
import { startStack, type Stack } from "../../scripts/lib/stack.ts";
import { startAgentProcess, type AgentProcess } from "../../scripts/local-cloud/agent-process.ts";
import { startGitServer } from "../../scripts/local-github/git-server.ts";
import { commitFiles } from "../../scripts/local-github/repositories.ts";
import { defaultTestBackend } from "../../scripts/local-db/index.ts";
import { GITHUB_WEBHOOK_SECRET } from "../../scripts/local-github/github.ts";
import { pullRequestPayload } from "../github-payloads.ts";
import { installApp } from "../installations.ts";
import { BASE_IMAGE, docker, ensureBaseImage, removeTestImages, requireDocker, startRegistry, type TestRegistry } from "./docker-fixtures.ts";

// The product end to end on a real Docker engine: a pull request's webhook → Core (wrangler dev) → the local cloud
// boots a "VM" that runs the real agent (agent/src/main.ts, restarted like systemd would) → the image is built from a
// real git repository on the preview VM itself (default mode: no registry) → compose runs it with its secrets and
// on_start hook → a visitor reaches it at http://<hash>.preview.localhost:<port>/ through the preview tunnel.

const hasDocker = requireDocker("the pipeline's end-to-end Docker tests (test/system/pipeline-docker.test.ts)");
const run = randomBytes(4).toString("hex");
const repo = `e2e/web-${run}`;
const ENV_SECRET = `env-secret-${randomBytes(8).toString("hex")}`;
const FILE_SECRET = `file-secret-${randomBytes(8).toString("hex")}`;
const prefix = `stg_e${run}_`;

let stack: Stack;
let git: Awaited<ReturnType<typeof startGitServer>>;
let registry: TestRegistry;
const gitRoot = mkdtempSync(join(tmpdir(), "stagely-e2e-repos-"));
const vmRoot = mkdtempSync(join(tmpdir(), "stagely-e2e-vms-"));
/** Every VM's agent process, by agent id. */
const vms = new Map<string, AgentProcess>();
let apiToken = "";
let projectId = "";
let installationId = 0;

const STAGELY_YAML = `version: 2
builds:
  web:
    context: ./web
    platforms: [linux/amd64, linux/arm64]
preview:
  size: small
  lifecycle:
    on_start: [{service: web, command: "echo hook ran > /www/hook.txt"}]
`;

/** Two services: web (built from the repository, with a healthcheck and the hook) and store (the base image as is). */
function appFiles(marker: string, options: { dockerfileRun?: string[]; healthcheck?: string; yaml?: string } = {}) {
  const dockerfile = [
    `FROM ${BASE_IMAGE}`,
    'RUN echo "preparing the base layer"',
    ...(options.dockerfileRun ?? []),
    "COPY www /www",
    'CMD ["sh", "-c", "echo web container up; exec httpd -f -p 8080 -h /www"]',
    "",
  ].join("\n");
  const compose = [
    "services:",
    "  web:",
    "    image: web",
    '    ports: ["8080"]',
    "    stop_grace_period: 1s",
    "    healthcheck:",
    `      test: ["CMD-SHELL", ${JSON.stringify(options.healthcheck ?? "wget -q -O /dev/null http://127.0.0.1:8080/")}]`,
    "      interval: 1s",
    "      timeout: 2s",
    "      retries: 3",
    "  store:",
    `    image: ${BASE_IMAGE}`,
    '    command: ["sh", "-c", "exec sleep 1000000"]',
    "    stop_grace_period: 1s",
    "",
  ].join("\n");
  return { "stagely.yaml": options.yaml ?? STAGELY_YAML, "docker-compose.yml": compose, "web/Dockerfile": dockerfile, "web/www/index.html": `${marker}\n` };
}

/** A commit in the git repository the agents clone, and the same files in the fake GitHub's contents API Core reads. */
async function commit(branch: string, files: Record<string, string>): Promise<string> {
  const sha = commitFiles(gitRoot, repo, { branch, files, message: branch });
  for (const path of ["stagely.yaml", "docker-compose.yml"]) {
    const response = await fetch(`${stack.githubUrl}/_fake/repos/${repo}/files`, { method: "POST", body: JSON.stringify({ ref: sha, path, content: files[path] }) });
    if (!response.ok) throw new Error(`fake GitHub files: ${response.status}`);
  }
  return sha;
}

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${apiToken}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? null : response.json();
}

async function pullRequest(action: string, number: number, sha: string, branch: string): Promise<void> {
  const body = JSON.stringify(pullRequestPayload({ action, repo, number, sha, ref: branch, installationId }));
  const response = await fetch(`${stack.apiUrl}/v1/webhooks/github`, {
    method: "POST",
    body,
    headers: { "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": crypto.randomUUID(), "X-Hub-Signature-256": `sha256=${await hmacSha256Hex(GITHUB_WEBHOOK_SECRET, body)}` },
  });
  if (response.status !== 202) throw new Error(`webhook ${action}: ${response.status} ${await response.text()}`);
}

async function waitFor<T>(what: string, read: () => Promise<T | undefined | false>, timeoutMs = 150_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function environmentOf(number: number) {
  const rows = await stack.db.select().from(environments).where(eq(environments.projectId, projectId));
  return rows.filter((e) => e.prNumber === number).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0];
}

const settled = (number: number, commitHash: string) =>
  waitFor(`PR ${number} at ${commitHash.slice(0, 8)} to be ready or failed`, async () => {
    const environment = await environmentOf(number);
    return environment && environment.commitHash === commitHash && ["ready", "failed"].includes(environment.status) ? environment : undefined;
  });

async function runsOf(environmentId: string) {
  return stack.db.select().from(workflowRuns).where(eq(workflowRuns.environmentId, environmentId)).orderBy(asc(workflowRuns.createdAt));
}

async function jobLog(runId: string): Promise<{ job: typeof buildJobs.$inferSelect; lines: string[] }> {
  const [job] = await stack.db.select().from(buildJobs).where(eq(buildJobs.workflowRunId, runId));
  const lines = await stack.db.select({ line: buildLogs.line }).from(buildLogs).where(eq(buildLogs.buildJobId, job!.id)).orderBy(asc(buildLogs.seq));
  return { job: job!, lines: lines.map((l) => l.line) };
}

const composeProject = (agentId: string, environmentId: string) => `${prefix}${agentId.slice(4, 12)}_${environmentId}`.toLowerCase();
const previewAgent = async (environmentId: string) =>
  (await stack.db.select().from(agentConnections).where(eq(agentConnections.environmentId, environmentId))).find((a) => a.role === "preview")!;

function leftovers(project: string): string[] {
  const label = `label=com.docker.compose.project=${project}`;
  return [docker("ps", "-aq", "--filter", label), docker("network", "ls", "-q", "--filter", label)].filter(Boolean);
}

function visit(hash: string, path = "/") {
  const host = `${hash}.preview.localhost:${stack.apiPort}`;
  return previewRequest(stack.apiUrl, host, path, { headers: { "X-Stagely-Token": apiToken } }).then(async (response) => {
    let text = "";
    for await (const chunk of response.body) text += String(chunk);
    return { status: response.status, text };
  });
}

/** Every row of every table of the stack's database, as text, that holds `needle`. */
async function rowsHolding(needle: string): Promise<string[]> {
  const tables = await stack.db.execute<{ name: string }>(sql`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`);
  const found: string[] = [];
  for (const { name } of tables.rows) {
    const hits = await stack.db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM ${sql.identifier(name)} t WHERE t::text LIKE ${`%${needle}%`}`);
    if (hits.rows[0]!.n > 0) found.push(name);
  }
  return found;
}

describe.skipIf(!hasDocker)("a pull request's preview on a real Docker engine", () => {
  beforeAll(async () => {
    ensureBaseImage();
    [git, registry] = await Promise.all([startGitServer({ root: gitRoot, authorize: (token) => token !== null }), startRegistry()]);
    stack = await startStack({
      backend: defaultTestBackend(),
      log: () => {},
      // Clones go to GitHub's web host: here the local git server holding the test's repository.
      vars: { GITHUB_WEB_URL: git.url },
      cloud: {
        startAgent: (agent) => {
          const vm = startAgentProcess({
            config: agent,
            dir: join(vmRoot, agent.agent_id),
            projectPrefix: `${prefix}${agent.agent_id.slice(4, 12)}_`,
            healthTimeoutSeconds: 20,
            restartDelayMs: 300,
            log: () => {},
          });
          vms.set(agent.agent_id, vm);
          // A terminated VM takes its containers with it (the local cloud's VMs share this engine).
          const vmPrefix = `${prefix}${agent.agent_id.slice(4, 12)}_`;
          return { stop: async () => {
            await vm.stop();
            await removeComposeProjects((project) => project.startsWith(vmPrefix));
          } };
        },
      },
    });

    const userId = newId("user");
    const teamId = newId("team");
    const token = await generateToken("api");
    apiToken = token.token;
    await stack.db.batch([
      stack.db.insert(users).values({ id: userId, email: `${userId}@e2e.test` }),
      stack.db.insert(teams).values({ id: teamId, slug: `e2e-${run}`, name: "E2E" }),
      stack.db.insert(teamMembers).values({ teamId, userId, role: "owner" }),
      stack.db.insert(apiTokens).values({ id: newId("token"), userId, kind: "api", name: "e2e", tokenHash: token.hash, tokenHint: token.hint }),
    ]);
    installationId = (await installApp(stack.db, stack.githubUrl!, teamId, [repo])).id;
    const provider = await api("POST", `/v1/teams/e2e-${run}/cloud-providers`, { name: "local", provider_type: "local", region: "local", config: { endpoint: stack.localCloudUrl } });
    projectId = (await api("POST", `/v1/teams/e2e-${run}/projects`, { name: "Web", repo_url: repo, cloud_provider_id: provider.id })).id;
    await api("POST", `/v1/projects/${projectId}/secrets`, { key: "APP_SECRET", value: ENV_SECRET, scope: "web" });
    await api("POST", `/v1/projects/${projectId}/secrets`, { key: "APP_CONF", value: FILE_SECRET, scope: "global", secret_type: "file", file_path: "run/app.conf" });
  }, 180_000);

  afterAll(async () => {
    await Promise.all([...vms.values()].map((vm) => vm.stop()));
    await removeComposeProjects((project) => project.startsWith(prefix));
    await Promise.all([stack?.stop(), git?.stop(), registry?.stop()]);
    removeTestImages(`web-${run}`);
    rmSync(gitRoot, { recursive: true, force: true });
    rmSync(vmRoot, { recursive: true, force: true });
  }, 120_000);

  it("default mode: built on the preview VM, served at the preview URL with its secrets, rebuilt there on a push with a warm cache, gone on close", { timeout: 300_000 }, async () => {
    const first = await commit("feature", appFiles(`first commit ${run}`));
    await pullRequest("opened", 1, first, "feature");
    const ready = await settled(1, first);
    const [firstRun] = await runsOf(ready.id);
    expect({ status: ready.status, run: firstRun!.errorMessage }).toEqual({ status: "ready", run: null });

    // Built on the preview VM: no builder agent, the preview's platform only, and the run's log says so.
    const built = await jobLog(firstRun!.id);
    expect(built.job).toMatchObject({ name: "web_amd64", status: "completed", vmId: null, agentId: null });
    expect(built.job.artifactUrl).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(built.lines[0]).toContain("skipped: linux/arm64");
    const agents = await stack.db.select().from(agentConnections).where(eq(agentConnections.environmentId, ready.id));
    expect(agents.map((a) => a.role)).toEqual(["preview"]);
    expect(vms.size).toBe(1);

    // Through the preview URL (the tunnel to the agent, then 127.0.0.1:<published port>): this commit's content.
    const page = await visit(ready.subdomainHash);
    expect(page).toEqual({ status: 200, text: `first commit ${run}\n` });
    expect((await visit(ready.subdomainHash, "/hook.txt")).text).toBe("hook ran\n");

    // The secrets are inside the container, and nowhere else: not in a log line, a database row or on GitHub.
    const project = composeProject(agents[0]!.agentId, ready.id);
    const web = docker("ps", "-q", "--filter", `label=com.docker.compose.project=${project}`, "--filter", "label=com.docker.compose.service=web");
    expect(docker("exec", web, "sh", "-c", 'echo "$APP_SECRET"')).toBe(ENV_SECRET);
    expect(docker("exec", web, "cat", "/run/app.conf")).toBe(FILE_SECRET);
    for (const secret of [ENV_SECRET, FILE_SECRET]) {
      expect(await rowsHolding(secret)).toEqual([]);
      expect([...vms.values()].flatMap((vm) => vm.output()).filter((line) => line.includes(secret))).toEqual([]);
    }
    const comments = (await (await fetch(`${stack.githubUrl}/_fake/repos/${repo}/issues/1/comments`)).json()) as { body: string }[];
    expect(comments.length).toBeGreaterThan(0);
    expect(JSON.stringify(comments)).not.toContain(ENV_SECRET);

    // A push: the same VM rebuilds (its layer cache warm) and serves the new content.
    const second = await commit("feature", appFiles(`second commit ${run}`));
    await pullRequest("synchronize", 1, second, "feature");
    const updated = await settled(1, second);
    expect(updated).toMatchObject({ id: ready.id, status: "ready", vmId: ready.vmId });
    const rebuilt = await jobLog((await runsOf(ready.id))[1]!.id);
    expect(rebuilt.lines.join("\n")).toMatch(/Using cache|CACHED/);
    expect(vms.size).toBe(1);
    expect((await visit(ready.subdomainHash)).text).toBe(`second commit ${run}\n`);

    await pullRequest("closed", 1, second, "feature");
    await waitFor("the environment to be terminated", async () => (await environmentOf(1))?.status === "terminated");
    await waitFor("no container or network of the environment left", async () => leftovers(project).length === 0, 60_000);
  });

  it("a broken Dockerfile fails the run naming the step; a failing healthcheck fails the deploy with the container's output", { timeout: 240_000 }, async () => {
    const broken = await commit("broken", appFiles("broken", { dockerfileRun: ['RUN echo "compiling the app" && echo "error: cannot compile" >&2 && exit 3'] }));
    await pullRequest("opened", 2, broken, "broken");
    const failedBuild = await settled(2, broken);
    expect(failedBuild.status).toBe("failed");
    const [brokenRun] = await runsOf(failedBuild.id);
    expect(brokenRun!.status).toBe("failed");
    const { job, lines } = await jobLog(brokenRun!.id);
    expect(job.status).toBe("failed");
    expect(job.errorMessage).toMatch(/step \d+\/\d+ \(RUN echo "compiling the app"/);
    expect(lines.slice(-15).join("\n")).toContain("error: cannot compile");

    const unhealthy = await commit("unhealthy", appFiles(`unhealthy ${run}`, { healthcheck: "echo health-probe-says-no; exit 1" }));
    await pullRequest("opened", 3, unhealthy, "unhealthy");
    const failedDeploy = await settled(3, unhealthy);
    expect(failedDeploy.status).toBe("failed");
    const [deployRun] = await runsOf(failedDeploy.id);
    expect((await jobLog(deployRun!.id)).job.status).toBe("completed");
    expect(deployRun!.errorMessage).toMatch(/web: \S+ \(unhealthy\)/);
    // The container's own last output travels with the failure.
    expect(deployRun!.errorMessage).toContain("web container up");
  });

  it("registry mode: a builder VM pushes by digest to the registry (with auth), the preview pulls by digest", { timeout: 180_000 }, async () => {
    const yaml = STAGELY_YAML.replace("platforms: [linux/amd64, linux/arm64]", "platform: linux/amd64");
    const pushed = await commit("registry", appFiles(`registry mode ${run}`, { yaml }));
    await api("PUT", `/v1/projects/${projectId}/registry`, { kind: "generic", address: `${registry.address}/stagely-e2e`, username: registry.username, password: registry.password });
    try {
      await pullRequest("opened", 5, pushed, "registry");
      const ready = await settled(5, pushed);
      const [registryRun] = await runsOf(ready.id);
      expect({ status: ready.status, error: registryRun!.errorMessage }).toEqual({ status: "ready", error: null });
      const { job, lines } = await jobLog(registryRun!.id);
      // Built and pushed by a builder of its own, not the preview.
      expect(job.vmId).toBeTruthy();
      const builder = (await stack.db.select().from(agentConnections).where(eq(agentConnections.buildJobId, job.id)))[0]!;
      expect(builder.role).toBe("builder");
      const artifact = job.artifactUrl!;
      expect(artifact).toMatch(new RegExp(`^${registry.address.replace(/[.]/g, "\\.")}/stagely-e2e/e2e/web-${run}/web@sha256:[0-9a-f]{64}$`));
      expect(lines.join("\n")).not.toContain(registry.password);
      // The registry has that manifest (asked with the registry's own auth), and the preview runs exactly that digest.
      const [name, digest] = artifact.slice(registry.address.length + 1).split("@") as [string, string];
      const manifest = await fetch(`http://${registry.address}/v2/${name}/manifests/${digest}`, {
        headers: { Authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString("base64")}`, Accept: "application/vnd.docker.distribution.manifest.v2+json" },
      });
      expect(manifest.status).toBe(200);
      const preview = await previewAgent(ready.id);
      const web = docker("ps", "-q", "--filter", `label=com.docker.compose.project=${composeProject(preview.agentId, ready.id)}`, "--filter", "label=com.docker.compose.service=web");
      expect(docker("inspect", "--format", "{{.Config.Image}}", web)).toBe(artifact);
      expect((await visit(ready.subdomainHash)).text).toBe(`registry mode ${run}\n`);
      expect(await rowsHolding(registry.password)).toEqual([]);
    } finally {
      await api("DELETE", `/v1/projects/${projectId}/registry`);
    }
  });

  it("an agent killed mid-build is restarted, reconnects and fails the job cleanly: nothing stuck, no container left", { timeout: 240_000 }, async () => {
    const slow = await commit("slow", appFiles(`slow ${run}`, { dockerfileRun: [`RUN echo "slow step ${run}" && sleep 300`] }));
    await pullRequest("opened", 4, slow, "slow");
    const environment = await waitFor("the slow build to run", async () => {
      const e = await environmentOf(4);
      if (!e) return undefined;
      const [r] = await runsOf(e.id);
      if (!r) return undefined;
      const { lines } = await jobLog(r.id).catch(() => ({ lines: [] as string[] }));
      return lines.some((l) => l.includes(`slow step ${run}`)) ? e : undefined;
    });
    const agent = await previewAgent(environment.id);
    const vm = vms.get(agent.agentId)!;
    process.kill(vm.pid()!, "SIGKILL");
    await waitFor("the agent to be restarted", async () => vm.restarts() === 1 && vm.pid() !== undefined, 30_000);

    const [slowRun] = await runsOf(environment.id);
    const { job } = await waitFor("the interrupted build to settle", async () => {
      const log = await jobLog(slowRun!.id);
      return ["completed", "failed", "cancelled"].includes(log.job.status) ? log : undefined;
    }, 90_000);
    expect(job.status).toBe("failed");
    expect(job.errorMessage).toContain("AGENT_RESTARTED");
    await waitFor("the environment to fail with its build", async () => (await environmentOf(4))?.status === "failed", 30_000);
    // Nothing of the killed build is left running, and the environment never got containers.
    await waitFor("the killed build's container to be gone", async () => !docker("ps", "--no-trunc", "--format", "{{.Command}}").includes(`slow step ${run}`), 30_000);
    expect(leftovers(composeProject(agent.agentId, environment.id))).toEqual([]);
  });
});
