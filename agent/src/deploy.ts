import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import type { DeployCommand } from "../../src/agents/protocol.ts";
import { OVERRIDE_FILE, readComposeFile, renderOverride, type MountedFile } from "./compose-override.ts";
import { inspectImage, removeComposeProjects, withRegistryLogin, type DockerTools } from "./docker.ts";
import { JobFailure, seconds, type JobContext } from "./job-context.ts";
import { runProcess, type RunOptions, type RunResult } from "./run-process.ts";
import { projectContainers, serviceReport, type ServiceContainer } from "./services.ts";

const COMPOSE_FILE = "docker-compose.yml";
const CONTAINER_LOG_LINES = 20;
const POLL_MS = 1_000;

/**
 * The compose project of this VM's environment (`docker compose -p <name>`), in a directory of its own under the
 * agent's work directory: the compose file Core sent, the override, and the file secrets (never in a checkout).
 */
export class ComposeProject {
  readonly name: string;
  readonly dir: string;
  /** The secret variables of the last deploy: every compose command needs them to read the override. */
  private secretEnv: Record<string, string> = {};

  constructor(name: string, workDir: string) {
    this.name = name;
    this.dir = join(workDir, "projects", name);
  }

  /** `docker compose -p <name> -f docker-compose.yml -f docker-compose.stagely.yml <args>` (or docker-compose v1). */
  compose(tools: DockerTools, args: string[], options: RunOptions = {}): Promise<RunResult> {
    if (!tools.compose) throw new JobFailure("COMPOSE_UNAVAILABLE", "neither docker compose (v2) nor docker-compose (v1) is installed");
    const [program, ...prefix] = tools.compose.command;
    return runProcess(program, [...prefix, "-p", this.name, "-f", COMPOSE_FILE, "-f", OVERRIDE_FILE, ...args], {
      ...options,
      cwd: this.dir,
      env: { ...this.secretEnv, ...options.env },
    });
  }

  /** Writes the compose file, the file secrets and the override for a deploy; returns the services it defines. */
  async prepare(command: DeployCommand): Promise<string[]> {
    const summary = readComposeFile(command.compose_file);
    const filesDir = join(this.dir, "files");
    await rm(filesDir, { recursive: true, force: true });
    await mkdir(filesDir, { recursive: true, mode: 0o700 });
    const mounted: MountedFile[] = [];
    for (const file of command.files) {
      if (!posix.isAbsolute(file.path) || /[:,\0\n]/.test(file.path)) {
        throw new JobFailure("BAD_SECRET_FILE", `a file secret's path must be an absolute container path without ":" or ",": ${file.path.slice(0, 200)}`);
      }
      if (!/^0?[0-7]{3}$/.test(file.mode)) throw new JobFailure("BAD_SECRET_FILE", `the mode of ${file.path} must be octal like 0600, not ${file.mode.slice(0, 10)}`);
      const content = Buffer.from(file.content_base64, "base64");
      // Named by what it holds: a changed secret is a new mount, so compose recreates the containers using it.
      const name = createHash("sha256").update(file.path).update("\0").update(file.mode).update("\0").update(content).digest("hex").slice(0, 24);
      const hostPath = join(filesDir, name);
      await writeFile(hostPath, content, { mode: Number.parseInt(file.mode, 8) });
      mounted.push({ hostPath, containerPath: file.path });
    }
    const override = renderOverride(summary, command, mounted);
    await writeFile(join(this.dir, COMPOSE_FILE), command.compose_file);
    await writeFile(join(this.dir, OVERRIDE_FILE), override.yaml);
    this.secretEnv = override.env;
    return summary.services;
  }

  /** `down` with volumes and orphans, then anything still labelled with the project (a deploy that never wrote its files). */
  async remove(tools: DockerTools, onLine?: RunOptions["onLine"]): Promise<void> {
    if (tools.compose && existsSync(join(this.dir, OVERRIDE_FILE))) await this.compose(tools, ["down", "--volumes", "--remove-orphans"], { onLine });
    await removeComposeProjects((project) => project === this.name);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Stops the containers (volumes kept). */
  async stop(tools: DockerTools): Promise<void> {
    if (tools.compose && existsSync(join(this.dir, OVERRIDE_FILE))) await this.compose(tools, ["down", "--remove-orphans"]);
  }
}

/** What is wrong with the services now: null when every one runs (and is healthy, where it has a healthcheck). */
function problemOf(containers: ServiceContainer[], services: string[]): { failed: boolean; text: string } | null {
  const missing = services.filter((name) => !containers.some((c) => c.service === name));
  if (missing.length > 0) return { failed: true, text: `no container for ${missing.join(", ")}` };
  const dead = containers.filter((c) => c.state === "exited" || c.state === "dead");
  if (dead.length > 0) return { failed: true, text: dead.map((c) => `${c.service} exited with code ${c.exitCode}`).join(", ") };
  const unhealthy = containers.filter((c) => c.health === "unhealthy");
  if (unhealthy.length > 0) return { failed: true, text: unhealthy.map((c) => `${c.service} is unhealthy`).join(", ") };
  const waiting = containers.filter((c) => c.state !== "running" || (c.health !== null && c.health !== "healthy"));
  if (waiting.length > 0) return { failed: false, text: waiting.map((c) => `${c.service} is ${c.health ?? c.state}`).join(", ") };
  return null;
}

/**
 * DEPLOY: the images pulled (logged in when Core gives credentials), the compose file with its override, `up -d
 * --remove-orphans` (a redeploy replaces changed containers and keeps named volumes), the on_start hooks in order,
 * then a wait until every service runs and is healthy. A failure reports the reason and the failing containers' last
 * output as the deploy's last lines, then STATUS failed with the services.
 */
export async function runDeploy(ctx: JobContext, command: DeployCommand, project: ComposeProject, healthTimeoutSeconds: number): Promise<void> {
  const startedAt = performance.now();
  const signal = ctx.signal;
  ctx.job.report("running");
  let services: string[] = [];
  try {
    const tools = await ctx.tools();
    if (!tools.engineVersion) throw new JobFailure("DOCKER_UNAVAILABLE", "no Docker engine answers on this machine");
    await mkdir(project.dir, { recursive: true, mode: 0o700 });
    services = await project.prepare(command);

    await withRegistryLogin(
      command.registry_auth,
      ctx.workspace,
      async (loginEnv) => {
        for (const image of new Set(Object.values(command.images))) {
          if ((await inspectImage(image, "{{.Id}}")) !== null) continue;
          ctx.note(`pulling ${image}`);
          const pulled = await runProcess("docker", ["pull", image], { env: loginEnv, signal, onLine: ctx.log });
          if (pulled.code !== 0 && !pulled.aborted) {
            throw new JobFailure("PULL_FAILED", `docker pull ${image} failed: ${pulled.stderrTail.filter(Boolean).at(-1) ?? `exit code ${pulled.code}`}`);
          }
        }
        ctx.note(`starting ${services.join(", ")} (compose project ${project.name})`);
        const up = await project.compose(tools, ["up", "-d", "--remove-orphans", "--no-build"], { env: loginEnv, signal, onLine: ctx.log });
        if (up.code !== 0 && !up.aborted) throw new JobFailure("COMPOSE_UP_FAILED", `docker compose up failed: ${up.stderrTail.filter(Boolean).at(-1) ?? `exit code ${up.code}`}`);
      },
      { onLine: ctx.log, signal },
    );

    for (const hook of command.lifecycle.on_start) {
      if (signal.aborted) break;
      ctx.note(`on_start in ${hook.service}: ${hook.command}`);
      const ran = await project.compose(tools, ["exec", "-T", hook.service, "sh", "-c", hook.command], { signal, onLine: ctx.log });
      if (ran.code !== 0 && !ran.aborted) throw new JobFailure("HOOK_FAILED", `the on_start hook in ${hook.service} (${hook.command}) failed with exit code ${ran.code}`);
    }

    const deadline = Date.now() + healthTimeoutSeconds * 1000;
    for (;;) {
      if (signal.aborted) throw new JobFailure("DEPLOY_STOPPED", "the deploy was stopped");
      const containers = await projectContainers(project.name);
      const problem = problemOf(containers, services);
      if (!problem) {
        ctx.note(`every service is running (${seconds(startedAt)} s)`);
        ctx.job.report("completed", { duration_seconds: seconds(startedAt), services: containers.map(serviceReport) });
        return;
      }
      if (problem.failed) throw new JobFailure("SERVICE_FAILED", problem.text);
      if (Date.now() > deadline) throw new JobFailure("HEALTH_TIMEOUT", `not every service was healthy after ${healthTimeoutSeconds} s: ${problem.text}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (error) {
    if (signal.aborted) {
      ctx.job.report("terminated", { duration_seconds: seconds(startedAt) });
      return;
    }
    const failure = error instanceof JobFailure ? error : new JobFailure("AGENT_ERROR", `the agent failed: ${error instanceof Error ? error.message : String(error)}`);
    const containers = await projectContainers(project.name).catch(() => []);
    // The failing containers' own output first, the reason last: Core keeps the deploy's last lines.
    for (const container of containers.filter((c) => c.state !== "running" || c.health === "unhealthy")) {
      const output = await runProcess("docker", ["logs", "--tail", String(CONTAINER_LOG_LINES), container.id], {
        onLine: (stream, line) => ctx.log(stream, `${container.service} | ${line}`),
      }).catch(() => null);
      if (!output) ctx.note(`could not read the output of ${container.service}`);
    }
    ctx.note(`deploy failed: ${failure.message}`);
    ctx.job.report("failed", { duration_seconds: seconds(startedAt), services: containers.map(serviceReport) });
  }
}
