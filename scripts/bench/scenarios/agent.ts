// The real agent (the bundle VMs download) on this machine's Docker engine, against `wrangler dev`:
//   (1) BUILD received → STATUS completed for the test application, split into clone / build / push (the agent's own
//       "[stagely] … finished in" lines), with a cold layer cache and then warm, pushing to a registry with auth;
//   (2) a build whose RUN prints BENCH_AGENT_LOG_LINES lines (default 100000): the agent's memory (RSS) while it
//       streams them, its line rate, the rate at which Core stored them, and the same build run by docker alone.
// Needs Docker, git, busybox-static and docker-registry (what .ci/run installs); without an engine it says so and skips.
// Sizes: BENCH_AGENT_BUILDS (warm builds, default 3), BENCH_AGENT_LOG_LINES.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asc, eq } from "drizzle-orm";
import { removeComposeProjects } from "../../../agent/src/docker.ts";
import { buildJobs, buildLogs } from "../../../src/db/schema.ts";
import { getDb } from "../../../src/db/client.ts";
import { ensureBaseImage, removeTestImages, startRegistry, testApp } from "../../../test/system/docker-fixtures.ts";
import { AGENT_BUNDLE_PATH, startAgentProcess } from "../../local-cloud/agent-process.ts";
import { dockerEngine } from "../../local-cloud/agents.ts";
import { startGitServer } from "../../local-github/git-server.ts";
import { commitFiles } from "../../local-github/repositories.ts";
import type { Stack } from "../../lib/stack.ts";
import type { BenchScenario } from "../types.ts";
import { createAgent, sendCommand } from "./agents.ts";

const envNumber = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

function rssMb(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  } catch {
    return null;
  }
}

interface BuildRun {
  receivedToCompletedS: number;
  phases: Record<"clone" | "build" | "push", number | null>;
  status: string;
  lines: { seq: number; timestamp: Date; line: string }[];
  completedAt: number;
  rss: number[];
  idleRss: number | null;
}

/** One BUILD by a fresh builder agent process, timed from the agent's own "started" and "completed" lines. */
async function timedBuild(target: Stack, vmRoot: string, command: (jobId: string) => Record<string, unknown>, sampleRss: boolean): Promise<BuildRun> {
  const agent = await createAgent(target, "builder");
  const marks: Record<string, number> = {};
  const vm = startAgentProcess({
    config: { agent_id: agent.agent_id, token: agent.token, core_url: target.apiUrl, role: "builder", job_id: agent.build_job_id! },
    dir: join(vmRoot, agent.agent_id),
    projectPrefix: "stg_bench_",
    entry: AGENT_BUNDLE_PATH,
    log: (line) => {
      const now = performance.now();
      if (line.includes("connected (heartbeat")) marks.connected ??= now;
      if (line.includes(`BUILD ${agent.build_job_id} started`)) marks.received = now;
      if (/BUILD \S+ (completed|failed|terminated)$/.test(line)) marks.done = now;
    },
  });
  try {
    while (marks.connected === undefined) await sleep(20);
    const idleRss = rssMb(vm.pid());
    await sendCommand(target, agent.agent_id, command(agent.build_job_id!));
    const rss: number[] = [];
    while (marks.done === undefined) {
      if (sampleRss) {
        const sample = rssMb(vm.pid());
        if (sample !== null) rss.push(sample);
      }
      await sleep(sampleRss ? 100 : 20);
    }
    const db = getDb(target.local.databaseUrl(target.database));
    let job = (await db.select().from(buildJobs).where(eq(buildJobs.id, agent.build_job_id!)))[0]!;
    while (job.status === "running" || job.status === "provisioning") {
      await sleep(50);
      job = (await db.select().from(buildJobs).where(eq(buildJobs.id, agent.build_job_id!)))[0]!;
    }
    const completedAt = performance.now();
    const lines = await db
      .select({ seq: buildLogs.seq, timestamp: buildLogs.timestamp, line: buildLogs.line })
      .from(buildLogs)
      .where(eq(buildLogs.buildJobId, agent.build_job_id!))
      .orderBy(asc(buildLogs.seq));
    const phase = (name: string) => {
      const found = lines.map((l) => new RegExp(`^\\[stagely\\] ${name} finished in ([\\d.]+) s$`).exec(l.line)).find(Boolean);
      return found ? Number(found[1]) : null;
    };
    if (job.status !== "completed") throw new Error(`the benchmark build failed: ${job.errorMessage ?? job.status}`);
    return {
      receivedToCompletedS: (marks.done - marks.received!) / 1000,
      phases: { clone: phase("clone"), build: phase("build"), push: phase("push") },
      status: job.status,
      lines: lines.map((l) => ({ ...l, timestamp: new Date(l.timestamp) })),
      completedAt: completedAt - marks.received!,
      rss,
      idleRss,
    };
  } finally {
    // The pipeline retires a builder after its build; one that is still up is stopped.
    await vm.stop();
  }
}

/** The noisy build by docker alone (legacy builder, output discarded): what the agent's streaming is compared with. */
async function dockerAlone(context: string): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const build = spawn("docker", ["build", "--force-rm", "-q", "-t", "stagely-bench/noisy:alone", context], { env: { ...process.env, DOCKER_BUILDKIT: "0" }, stdio: "ignore" });
    build.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`docker build exited with ${code}`))));
  });
  return (performance.now() - started) / 1000;
}

export const agentScenario: BenchScenario = {
  name: "agent",
  async run({ target, log }) {
    const engine = await dockerEngine();
    if (!engine) {
      log("agent: skipped: no Docker engine answers `docker info` (install docker.io and start dockerd, or run .ci/run)");
      return [{ scenario: "real agent", skipped: "no Docker engine" }];
    }
    const warmBuilds = envNumber("BENCH_AGENT_BUILDS", 3);
    const logLines = envNumber("BENCH_AGENT_LOG_LINES", 100_000);
    const run = randomBytes(4).toString("hex");
    const token = `ghs_bench_${randomBytes(8).toString("hex")}`;
    const root = mkdtempSync(join(tmpdir(), "stagely-bench-agent-"));
    const vmRoot = join(root, "vms");
    mkdirSync(vmRoot);
    ensureBaseImage();
    const [git, registry] = await Promise.all([startGitServer({ root: join(root, "repos"), authorize: (t) => t === token }), startRegistry()]);
    const rows: Record<string, unknown>[] = [];
    try {
      const app = commitFiles(join(root, "repos"), "bench/web", { branch: "main", files: testApp({ marker: `bench ${run}` }).files, message: "app" });
      const noisyRun = `RUN seq 1 ${logLines} | sed 's/^/noisy build output line /' # ${run}`;
      const noisy = commitFiles(join(root, "repos"), "bench/web", { branch: "noisy", files: testApp({ marker: "noisy", dockerfileRun: [noisyRun] }).files, message: "noisy" });
      const build = (commit: string, image: string, push: boolean) => (jobId: string) => ({
        type: "BUILD",
        job_id: jobId,
        context: { repo_url: `${git.url}/bench/web.git`, commit_hash: commit, branch: "main", clone_token: token },
        build_config: { context_path: "web", dockerfile: "web/Dockerfile", target_image: image, platform: "linux/amd64", push },
        registry_auth: push ? { registry: registry.address, username: registry.username, password: registry.password } : null,
      });

      log(`agent: BUILD of the test application with push to a registry, 1 cold and ${warmBuilds} warm (Docker ${engine}) ...`);
      const image = `${registry.address}/stagely-bench/web-${run}:app`;
      const timed: BuildRun[] = [];
      for (let i = 0; i <= warmBuilds; i++) timed.push(await timedBuild(target, vmRoot, build(app, image, true), false));
      const describe = (label: string, runs: BuildRun[]) => ({
        scenario: `BUILD received → completed, ${label}`,
        builds: runs.length,
        total_s: round(median(runs.map((r) => r.receivedToCompletedS))),
        clone_s: round(median(runs.map((r) => r.phases.clone ?? 0))),
        build_s: round(median(runs.map((r) => r.phases.build ?? 0))),
        push_s: round(median(runs.map((r) => r.phases.push ?? 0))),
      });
      rows.push(describe("cold cache", timed.slice(0, 1)), describe("warm cache (median)", timed.slice(1)));
      log(`agent: ${JSON.stringify(rows)}`);

      log(`agent: a build printing ${logLines} lines: docker alone, then through the agent ...`);
      const context = join(root, "noisy-context");
      mkdirSync(join(context, "www"), { recursive: true });
      const files = testApp({ marker: "noisy", dockerfileRun: [`RUN seq 1 ${logLines} | sed 's/^/noisy build output line /' # alone ${run}`] }).files;
      writeFileSync(join(context, "Dockerfile"), files["web/Dockerfile"]);
      writeFileSync(join(context, "www", "index.html"), files["web/www/index.html"]);
      const aloneS = await dockerAlone(context);
      const streamed = await timedBuild(target, vmRoot, build(noisy, `stagely-bench/noisy:${run}`, false), true);
      const noisyLines = streamed.lines.filter((l) => l.line.startsWith("noisy build output line "));
      const first = noisyLines[0]!.timestamp.getTime();
      const last = noisyLines.at(-1)!.timestamp.getTime();
      rows.push({
        scenario: `noisy build, ${logLines} lines`,
        lines_stored: streamed.lines.length,
        noisy_lines_stored: noisyLines.length,
        docker_alone_s: round(aloneS),
        agent_build_s: round(streamed.phases.build ?? 0),
        agent_lines_per_s: Math.round(noisyLines.length / Math.max((last - first) / 1000, 0.001)),
        stored_lines_per_s: Math.round(streamed.lines.length / (streamed.completedAt / 1000)),
        agent_rss_idle_mb: round(streamed.idleRss ?? 0, 1),
        agent_rss_peak_mb: round(Math.max(...streamed.rss), 1),
        agent_rss_median_mb: round(median(streamed.rss), 1),
      });
      return rows;
    } finally {
      await Promise.all([git.stop(), registry.stop()]);
      await removeComposeProjects((project) => project.startsWith("stg_bench_"));
      removeTestImages(`web-${run}`);
      removeTestImages("stagely-bench/noisy");
      rmSync(root, { recursive: true, force: true });
    }
  },
};
