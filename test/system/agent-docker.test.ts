import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeComposeProjects } from "../../agent/src/docker.ts";
import { resolveServiceAddress } from "../../agent/src/services.ts";
import { buildJobs, buildLogs, environments, workflowRuns } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { startStack, type Stack } from "../../scripts/lib/stack.ts";
import { AGENT_BUNDLE_PATH, startAgentProcess, type AgentProcess } from "../../scripts/local-cloud/agent-process.ts";
import { startGitServer } from "../../scripts/local-github/git-server.ts";
import { commitFiles } from "../../scripts/local-github/repositories.ts";
import { defaultTestBackend } from "../../scripts/local-db/index.ts";
import { docker, ensureBaseImage, removeTestImages, requireDocker, startRegistry, testApp, type TestRegistry } from "./docker-fixtures.ts";

// The real agent (the bundle VMs download) as a process, on this machine's Docker engine, against the real Worker
// under wrangler dev: builds from a git server with a clone token, a registry with auth, deploys with compose, and
// the failure paths. Agents are created through the development routes, as `npm run agent:sim -- --dev` does.

const hasDocker = requireDocker("the real agent's Docker tests (test/system/agent-docker.test.ts)");
const run = randomBytes(4).toString("hex");
const TOKEN = `ghs_clone_${randomBytes(12).toString("hex")}`;
const BUILD_SECRET = `build-secret-${randomBytes(6).toString("hex")}`;
const APP_SECRET = `app-secret-${randomBytes(6).toString("hex")}`;
const GLOBAL_SECRET = `global-secret-${randomBytes(6).toString("hex")}`;
const FILE_SECRET = `file-secret-${randomBytes(6).toString("hex")}\n`;
const prefix = `stg_t${run}_`;

let stack: Stack;
let git: Awaited<ReturnType<typeof startGitServer>>;
let registry: TestRegistry;
const gitRoot = mkdtempSync(join(tmpdir(), "stagely-repos-"));
const vmRoot = mkdtempSync(join(tmpdir(), "stagely-vms-"));
const agents: AgentProcess[] = [];
const commits: Record<string, string> = {};
const repoUrl = () => `${git.url}/acme/web.git`;

interface DevAgent {
  agent_id: string;
  token: string;
  environment_id: string;
  build_job_id: string | null;
}

async function createAgent(role: "builder" | "preview", secrets: Record<string, string> = {}): Promise<DevAgent> {
  const response = await fetch(`${stack.apiUrl}/v1/dev/agents`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${stack.apiToken}` }, body: JSON.stringify({ role, secrets }) });
  if (response.status !== 201) throw new Error(`POST /v1/dev/agents: ${response.status} ${await response.text()}`);
  return (await response.json()) as DevAgent;
}

async function command(agent: DevAgent, body: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${stack.apiUrl}/v1/dev/agents/${agent.agent_id}/commands`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${stack.apiToken}` }, body: JSON.stringify(body) });
  if (response.status !== 202) throw new Error(`command: ${response.status} ${await response.text()}`);
}

function startAgent(agent: DevAgent, role: "builder" | "preview"): AgentProcess {
  const vm = startAgentProcess({
    config: {
      agent_id: agent.agent_id,
      token: agent.token,
      core_url: stack.apiUrl,
      role,
      ...(role === "builder" ? { job_id: agent.build_job_id! } : { environment_id: agent.environment_id }),
    },
    dir: join(vmRoot, agent.agent_id),
    projectPrefix: prefix,
    entry: AGENT_BUNDLE_PATH,
    healthTimeoutSeconds: 60,
    restartDelayMs: 500,
    log: () => {},
  });
  agents.push(vm);
  return vm;
}

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const jobRow = async (id: string) => (await stack.db.select().from(buildJobs).where(eq(buildJobs.id, id)))[0]!;
const finishedJob = (id: string, timeoutMs = 120_000) => waitFor(() => jobRow(id), (j) => ["completed", "failed", "cancelled"].includes(j.status), timeoutMs, `job ${id} to finish`);
const storedLines = async (id: string) =>
  (await stack.db.select({ line: buildLogs.line }).from(buildLogs).where(eq(buildLogs.buildJobId, id)).orderBy(asc(buildLogs.seq))).map((r) => r.line);

function buildCommand(agent: DevAgent, overrides: { commit?: string; image?: string; push?: boolean; timeout?: number; registry?: boolean } = {}) {
  return {
    type: "BUILD",
    job_id: agent.build_job_id,
    context: { repo_url: repoUrl(), commit_hash: overrides.commit ?? commits.first, branch: "main", clone_token: TOKEN },
    build_config: {
      context_path: "web",
      dockerfile: "web/Dockerfile",
      target_image: overrides.image ?? `stagely-test/web-${run}:local`,
      platform: "linux/amd64",
      build_args: { BUILD_NOTE: BUILD_SECRET },
      ...(overrides.push === undefined ? {} : { push: overrides.push }),
      ...(overrides.timeout ? { timeout_seconds: overrides.timeout } : {}),
    },
    registry_auth: overrides.registry ? { registry: registry.address, username: registry.username, password: registry.password } : null,
  };
}

/** A workflow run in `deploying` for the preview's environment: its DEPLOY's job id, settled by the pipeline. */
async function deployingRun(agent: DevAgent): Promise<string> {
  const id = newId("workflowRun");
  await stack.db.batch([
    stack.db.insert(workflowRuns).values({ id, environmentId: agent.environment_id, trigger: "manual_rebuild", commitHash: commits.first!, status: "deploying" }),
    stack.db.update(environments).set({ status: "deploying" }).where(eq(environments.id, agent.environment_id)),
  ]);
  return id;
}
const runRow = async (id: string) => (await stack.db.select().from(workflowRuns).where(eq(workflowRuns.id, id)))[0]!;
const settledRun = (id: string) => waitFor(() => runRow(id), (r) => r.status === "completed" || r.status === "failed", 120_000, `run ${id} to settle`);

/** Containers, networks and volumes of this file's compose projects. */
function leftovers(project: string): string[] {
  const label = `label=com.docker.compose.project=${project}`;
  return [docker("ps", "-aq", "--filter", label), docker("network", "ls", "-q", "--filter", label), docker("volume", "ls", "-q", "--filter", label)].filter(Boolean);
}

/** A variable in a running container's environment (busybox has no printenv). */
const env = (container: string, name: string) => docker("exec", container, "sh", "-c", `echo "\${${name}-(unset)}"`);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).map((p) => join(dir, p)).filter((p) => statSync(p).isFile());
}

describe.skipIf(!hasDocker)("the real agent on Docker", () => {
  beforeAll(async () => {
    ensureBaseImage();
    const app = testApp({ marker: `first commit ${run}` });
    commits.first = commitFiles(gitRoot, "acme/web", { branch: "main", files: app.files, message: "first" });
    commits.head = commitFiles(gitRoot, "acme/web", { branch: "main", files: testApp({ marker: `head commit ${run}` }).files, message: "head" });
    commits.broken = commitFiles(gitRoot, "acme/web", {
      branch: "broken",
      files: testApp({ marker: "broken", dockerfileRun: ['RUN echo "compiling the app" && echo "error: cannot compile" >&2 && exit 3'] }).files,
      message: "broken",
    });
    commits.slow = commitFiles(gitRoot, "acme/web", { branch: "slow", files: testApp({ marker: "slow", dockerfileRun: [`RUN echo "slow step" && sleep 300 # slow-${run}`] }).files, message: "slow" });
    [git, registry, stack] = await Promise.all([
      startGitServer({ root: gitRoot, authorize: (token) => token === TOKEN }),
      startRegistry(),
      startStack({ backend: defaultTestBackend(), log: () => {}, github: false, cloud: false }),
    ]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    await removeComposeProjects((project) => project.startsWith(prefix));
    await Promise.all([stack?.stop(), git?.stop(), registry?.stop()]);
    removeTestImages(`web-${run}`);
    rmSync(gitRoot, { recursive: true, force: true });
    rmSync(vmRoot, { recursive: true, force: true });
  }, 120_000);

  let artifact = "";

  it("builds exactly the commit asked for, streams masked logs, pushes by digest with registry auth, and exits 0 when retired", async () => {
    const agent = await createAgent("builder", { BUILD_SECRET });
    const vm = startAgent(agent, "builder");
    const image = `${registry.address}/stagely-test/web-${run}:${commits.first!.slice(0, 12)}`;
    await command(agent, buildCommand(agent, { image, registry: true }));
    const job = await finishedJob(agent.build_job_id!);
    expect(job, job.errorMessage ?? "").toMatchObject({ status: "completed", exitCode: 0 });
    artifact = job.artifactUrl!;
    expect(artifact).toMatch(new RegExp(`^${registry.address.replace(/\./g, "\\.")}/stagely-test/web-${run}@sha256:[0-9a-f]{64}$`));

    // The registry has that manifest, and only shows it to the credentials.
    const manifestUrl = `http://${registry.address}/v2/stagely-test/web-${run}/manifests/${artifact.split("@")[1]}`;
    const accept = { Accept: "application/vnd.docker.distribution.manifest.v2+json" };
    expect((await fetch(manifestUrl, { headers: accept })).status).toBe(401);
    const basic = `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString("base64")}`;
    expect((await fetch(manifestUrl, { headers: { ...accept, Authorization: basic } })).status).toBe(200);
    // Built from the first commit, not the branch head.
    expect(docker("run", "--rm", artifact, "cat", "/www/index.html")).toBe(`first commit ${run}`);

    const lines = await storedLines(agent.build_job_id!);
    expect(lines.some((l) => l.startsWith("[stagely] clone finished in"))).toBe(true);
    expect(lines.some((l) => l.startsWith("[stagely] push finished in"))).toBe(true);
    expect(lines).toContain("build note: ***");
    const everything = lines.join("\n") + vm.output().join("\n");
    for (const secret of [BUILD_SECRET, TOKEN, registry.password]) expect(everything).not.toContain(secret);
    // The pipeline retires a builder whose build is over: TERMINATE, then the token is revoked.
    expect(await vm.exited).toBe(0);
    // Logged out: no credentials left in the agent's work directory, and the job's workspace is gone.
    expect(filesUnder(join(vmRoot, agent.agent_id)).some((p) => readFileSync(p, "latin1").includes(registry.password))).toBe(false);
    expect(readdirSync(join(vmRoot, agent.agent_id, "work", "jobs"))).toEqual([]);
  }, 180_000);

  it("keeps the image on the VM when not pushing (artifact = local image id) and reuses the layer cache next time", async () => {
    const ids: string[] = [];
    const logs: string[][] = [];
    for (let i = 0; i < 2; i++) {
      const agent = await createAgent("builder");
      startAgent(agent, "builder");
      await command(agent, buildCommand(agent, { push: false, image: `stagely-test/web-${run}:local${i}` }));
      const job = await finishedJob(agent.build_job_id!);
      expect(job.status, job.errorMessage ?? "").toBe("completed");
      ids.push(job.artifactUrl!);
      logs.push(await storedLines(agent.build_job_id!));
    }
    expect(ids[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(ids[0]).toBe(docker("image", "inspect", "--format", "{{.Id}}", `stagely-test/web-${run}:local0`));
    expect(ids[1]).toBe(ids[0]);
    expect(logs[1]!.filter((l) => l.includes("Using cache") || l.includes("CACHED")).length).toBeGreaterThanOrEqual(2);
  }, 180_000);

  it("fails a broken Dockerfile with the failing step and its output as the reason and last lines", async () => {
    const agent = await createAgent("builder");
    startAgent(agent, "builder");
    await command(agent, buildCommand(agent, { commit: commits.broken, push: false }));
    const job = await finishedJob(agent.build_job_id!);
    expect(job.status).toBe("failed");
    expect(job.errorMessage).toMatch(/^BUILD_FAILED: step 4\/6 \(RUN echo "compiling the app".*exit 3\) failed: .*returned a non-zero code: 3/);
    const lines = await storedLines(agent.build_job_id!);
    expect(lines).toContain("compiling the app");
    expect(lines).toContain("error: cannot compile");
    expect(lines.at(-1)).toMatch(/^\[stagely\] failed: step 4\/6/);
  }, 120_000);

  it("stops a build over its timeout and fails it saying so, leaving no container behind", async () => {
    const agent = await createAgent("builder");
    startAgent(agent, "builder");
    const started = Date.now();
    await command(agent, buildCommand(agent, { commit: commits.slow, push: false, timeout: 6 }));
    const job = await finishedJob(agent.build_job_id!, 60_000);
    expect(Date.now() - started).toBeLessThan(40_000);
    expect(job.status).toBe("failed");
    expect(job.errorMessage).toMatch(/^BUILD_TIMEOUT: the build exceeded its timeout of 6 s and was stopped during step 4\/6 \(RUN echo "slow step" && sleep 300/);
    await waitFor(async () => docker("ps", "-a", "--no-trunc", "--format", "{{.Command}}"), (out) => !out.includes(`slow-${run}`), 20_000, "the build container to go");
  }, 90_000);

  it("restarts an agent killed mid-build, which reconnects and fails the interrupted job cleanly", async () => {
    const agent = await createAgent("builder");
    const vm = startAgent(agent, "builder");
    await command(agent, buildCommand(agent, { commit: commits.slow, push: false }));
    await waitFor(() => storedLines(agent.build_job_id!), (lines) => lines.includes("slow step"), 60_000, "the slow step to start");
    process.kill(vm.pid()!, "SIGKILL");
    const job = await finishedJob(agent.build_job_id!, 60_000);
    expect(job.status).toBe("failed");
    expect(job.errorMessage).toMatch(/^AGENT_RESTARTED: the agent restarted while this build was running/);
    expect(vm.restarts()).toBe(1);
    // The restarted agent, reconnected, is retired like any builder whose build is over (TERMINATE, then its token is
    // revoked), at once now that the pipeline's queue does not batch: it exits 0 rather than being restarted again.
    expect(await vm.exited).toBe(0);
    expect(vm.restarts()).toBe(1);
    await waitFor(async () => docker("ps", "-a", "--no-trunc", "--format", "{{.Command}}"), (out) => !out.includes(`slow-${run}`), 20_000, "the build container to go");
  }, 120_000);

  describe("deploys", () => {
    let preview: DevAgent;
    let vm: AgentProcess;
    const project = () => `${prefix}${preview.environment_id}`;
    const deployCommand = (jobId: string, secret: string) => ({
      type: "DEPLOY",
      job_id: jobId,
      images: { web: artifact },
      compose_file: testApp({ marker: "" }).compose,
      secrets: [
        { key: "GLOBAL_FLAG", value: GLOBAL_SECRET, scope: "global" },
        { key: "APP_SECRET", value: secret, scope: "web" },
      ],
      files: [{ path: "/run/stagely/token", content_base64: Buffer.from(FILE_SECRET).toString("base64"), mode: "0400" }],
      lifecycle: { on_start: [{ service: "web", command: "echo hook-ran > /www/hook.txt" }] },
      registry_auth: { registry: registry.address, username: registry.username, password: registry.password },
    });
    const container = (service: string) => docker("ps", "-q", "--filter", `label=com.docker.compose.project=${project()}`, "--filter", `label=com.docker.compose.service=${service}`);

    it("pulls by digest with auth, starts the services with secrets by scope, a file secret and the on_start hook, and is ready when healthy", async () => {
      expect(artifact).not.toBe("");
      // Gone from this engine: the deploy must pull it from the registry.
      docker("rmi", "-f", artifact, `${registry.address}/stagely-test/web-${run}:${commits.first!.slice(0, 12)}`);
      preview = await createAgent("preview");
      vm = startAgent(preview, "preview");
      const runId = await deployingRun(preview);
      await command(preview, deployCommand(runId, APP_SECRET));
      const settled = await settledRun(runId);
      expect(settled.status, settled.errorMessage ?? "").toBe("completed");
      expect((await stack.db.select().from(environments).where(eq(environments.id, preview.environment_id)))[0]!.status).toBe("ready");

      const address = await resolveServiceAddress(project(), { service: "web", port: 8080 });
      expect(address?.host).toBe("127.0.0.1");
      const base = `http://${address!.host}:${address!.port}`;
      expect(await (await fetch(`${base}/`)).text()).toBe(`first commit ${run}\n`);
      expect(await (await fetch(`${base}/hook.txt`)).text()).toBe("hook-ran\n");
      expect(env(container("web"), "APP_SECRET")).toBe(APP_SECRET);
      expect(env(container("web"), "GLOBAL_FLAG")).toBe(GLOBAL_SECRET);
      expect(env(container("store"), "GLOBAL_FLAG")).toBe(GLOBAL_SECRET);
      expect(env(container("store"), "APP_SECRET")).toBe("(unset)");
      expect(docker("exec", container("web"), "cat", "/run/stagely/token")).toBe(FILE_SECRET.trim());
      expect(docker("exec", container("web"), "stat", "-c", "%a", "/run/stagely/token")).toBe("400");
      // Env secrets never touch the disk; the file secret only in its own folder, outside any checkout.
      const files = filesUnder(join(vmRoot, preview.agent_id));
      expect(files.filter((p) => readFileSync(p, "latin1").includes(APP_SECRET) || readFileSync(p, "latin1").includes(GLOBAL_SECRET))).toEqual([]);
      expect(files.filter((p) => readFileSync(p, "latin1").includes(FILE_SECRET)).map((p) => p.split("/").at(-2))).toEqual(["files"]);
      const printed = vm.output().join("\n");
      for (const secret of [APP_SECRET, GLOBAL_SECRET, FILE_SECRET.trim(), registry.password]) expect(printed).not.toContain(secret);
    }, 180_000);

    it("redeploys in place: changed containers are replaced, named volumes kept", async () => {
      const before = { web: container("web"), data: docker("exec", container("store"), "cat", "/data/first") };
      const runId = await deployingRun(preview);
      const changed = `${APP_SECRET}-rotated`;
      await command(preview, deployCommand(runId, changed));
      expect((await settledRun(runId)).status).toBe("completed");
      expect(container("web")).not.toBe(before.web);
      expect(env(container("web"), "APP_SECRET")).toBe(changed);
      expect(docker("exec", container("store"), "cat", "/data/first")).toBe(before.data);
    }, 180_000);

    it("fails a deploy whose healthcheck fails, with the container's last output as the reason", async () => {
      const failing = await createAgent("preview");
      const failingVm = startAgent(failing, "preview");
      const runId = await deployingRun(failing);
      await command(failing, {
        ...deployCommand(runId, APP_SECRET),
        compose_file: testApp({ marker: "", healthcheck: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9/"], webCommand: "echo 'boom: cannot reach the database' >&2; exec httpd -f -p 8080 -h /www" }).compose,
      });
      const settled = await settledRun(runId);
      expect(settled.status).toBe("failed");
      expect(settled.errorMessage).toContain("web: running (unhealthy)");
      expect(settled.errorMessage).toContain("web | boom: cannot reach the database");
      expect(settled.errorMessage).toMatch(/\[stagely\] deploy failed: web is unhealthy$/);
      await command(failing, { type: "TERMINATE", reason: "test over", grace_period_seconds: 5 });
      expect(await failingVm.exited).toBe(0);
      expect(leftovers(`${prefix}${failing.environment_id}`)).toEqual([]);
    }, 180_000);

    it("TERMINATE takes the project down with its volumes and networks, and the agent exits 0", async () => {
      expect(leftovers(project()).length).toBeGreaterThan(0);
      await command(preview, { type: "TERMINATE", reason: "pull request closed", grace_period_seconds: 5 });
      expect(await vm.exited).toBe(0);
      expect(leftovers(project())).toEqual([]);
    }, 120_000);
  });
});
