import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { closeCodes, previewExposure, type BuildCommand, type CoreMessage, type DeployCommand, type PreviewExposure } from "../../src/agents/protocol.ts";
import { createMasker } from "../../src/agents/masker.ts";
import type { AgentConfig } from "../../src/providers/cloud-init.ts";
import { runBuild } from "./build.ts";
import { openControlConnection, type ConnectionEnd, type JobChannel } from "./control-connection.ts";
import { ComposeProject, runDeploy } from "./deploy.ts";
import { detectDocker, type DockerTools } from "./docker.ts";
import type { JobContext } from "./job-context.ts";
import { JobStore } from "./job-store.ts";
import { resolveServiceAddress } from "./services.ts";
import { exposedResolver } from "./tunnel/exposure.ts";
import { httpUpstream } from "./tunnel/http-upstream.ts";
import type { ResolveTarget, Upstream } from "./tunnel/tunnel.ts";
import { machineLoad, systemInfo } from "./system-info.ts";
import { AGENT_VERSION } from "./version.ts";

/** Exit codes: 0 after TERMINATE, revocation or giving up (systemd leaves it stopped), 3 when Core refuses this agent. */
export const EXIT_REFUSED = 3;

export interface AgentOptions {
  config: AgentConfig;
  /** Where jobs check out and build, compose projects live, and job state survives a restart. */
  workDir: string;
  /** Compose projects are named <prefix><environment id> (several agents can share one engine with their own prefixes). */
  projectPrefix: string;
  /** How long a deploy waits for its services to run and be healthy. */
  healthTimeoutSeconds: number;
  log: (line: string) => void;
  /** Every valid message from Core (tests). */
  onMessage?: (message: CoreMessage) => void;
}

export interface RunningAgent {
  agentId: string;
  project: ComposeProject;
  /** Resolves with the exit code once the agent has finished. */
  done: Promise<number>;
  /** Stops at once (SIGTERM): running jobs are abandoned and reported as interrupted after the next start. */
  stop(): Promise<void>;
  /** Where this machine reaches a compose `{service, port}` of the environment (for preview traffic). */
  resolveService(target: { service: string; port: number }): Promise<{ host: string; port: number } | null>;
  /**
   * The preview tunnel's resolver: only the {service, port} targets the last DEPLOY exposed, reached at the address
   * resolveService finds on this machine (never one a request names). The exposure survives a restart.
   */
  resolveExposed: ResolveTarget;
}

interface RunningJob {
  controller: AbortController;
  finished: Promise<void>;
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * The Stagely agent: the control connection, BUILD and DEPLOY run on this machine's Docker engine, TERMINATE tears the
 * environment's compose project down. Jobs are remembered in the work directory, so after a crash and a restart a job
 * that was running is reported as interrupted instead of staying unfinished.
 */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const { config, workDir, log } = options;
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const store = new JobStore(workDir);
  const project = new ComposeProject(`${options.projectPrefix}${config.environment_id ?? config.agent_id}`.toLowerCase(), workDir);
  const running = new Map<string, RunningJob>();
  let latestDeploy: JobChannel | null = null;
  let shuttingDown = false;
  let terminating: Promise<void> | null = null;
  let stopping: Promise<void> | null = null;

  // The last DEPLOY's `preview` exposure, kept beside the compose project so a restarted agent still serves it.
  const exposureFile = join(project.dir, "exposure.json");
  let exposure = readExposure(exposureFile);
  const setExposure = (next: PreviewExposure | null) => {
    exposure = next;
    mkdirSync(project.dir, { recursive: true, mode: 0o700 });
    writeFileSync(exposureFile, JSON.stringify(next));
  };
  /** One upstream (and its keep-alive pool) per address; a recreated container may get another published port. */
  const upstreams = new Map<string, Upstream>();
  const resolveExposed = exposedResolver(
    () => exposure,
    async (target) => {
      const address = await resolveServiceAddress(project.name, target);
      if (!address) return null;
      const key = `${address.host}:${address.port}`;
      let upstream = upstreams.get(key);
      if (!upstream) upstreams.set(key, (upstream = httpUpstream(address)));
      return upstream;
    },
  );

  let tools: DockerTools | null = null;
  /** Asked again while no engine answered (cloud-init may still be installing Docker). */
  const getTools = async (): Promise<DockerTools> => {
    if (!tools?.engineVersion || !tools.compose) tools = await detectDocker();
    return tools;
  };

  const connection = openControlConnection({
    coreUrl: config.core_url,
    token: config.token,
    agentId: config.agent_id,
    version: AGENT_VERSION,
    log,
    onMessage: options.onMessage,
    systemInfo: async () => systemInfo(await getTools()),
    load: () => machineLoad(workDir),
    handlers: {
      onJob: (job, command) => void startJob(job, command),
      onTerminate: (reason, grace) => void terminate(reason, grace),
    },
  });

  // Before anything from Core can arrive (the connection is still being opened): a resent command finds its job.
  const interrupted: string[] = [];
  for (const record of store.load()) {
    const job = connection.restoreJob(record);
    if (job.finished) continue;
    const what = record.kind === "build" ? "build" : "deploy";
    log(`job ${job.id} (${what}) was running when the agent stopped: reporting it failed`);
    job.error("AGENT_RESTARTED", `the agent restarted while this ${what} was running (its process was killed or crashed); the ${what} was abandoned`);
    job.report("failed", { exit_code: 1 });
    store.save(job.id, job.kind, job.lastStatus);
    interrupted.push(job.id);
  }
  for (const id of interrupted) await rm(join(workDir, "jobs", id), { recursive: true, force: true });

  async function startJob(job: JobChannel, command: BuildCommand | DeployCommand): Promise<void> {
    const secrets =
      command.type === "BUILD"
        ? [command.context.clone_token ?? "", command.registry_auth?.password ?? ""]
        : [
            ...command.secrets.map((s) => s.value),
            ...command.files.map((f) => Buffer.from(f.content_base64, "base64").toString("utf8")),
            command.registry_auth?.password ?? "",
          ];
    const mask = createMasker(secrets.filter(Boolean));
    const workspace = join(workDir, "jobs", job.id);
    const controller = new AbortController();
    const masked: JobChannel = {
      id: job.id,
      kind: job.kind,
      get state() {
        return job.state;
      },
      get lastStatus() {
        return job.lastStatus;
      },
      get finished() {
        return job.finished;
      },
      // Colors and cursor movement are noise in a stored log (the legacy builder colors a step's stderr).
      log: (stream, data) => job.log(stream, mask(stripVTControlCharacters(data))),
      report: (state, fields) => job.report(state, fields),
      error: (code, message, context) => job.error(code, mask(message), context),
    };
    const ctx: JobContext = {
      job: masked,
      role: config.role,
      log: masked.log,
      note: (text) => masked.log("stdout", `[stagely] ${text}`),
      room: connection.room,
      signal: controller.signal,
      workspace,
      tools: getTools,
    };
    store.save(job.id, job.kind, null);
    if (command.type === "DEPLOY") setExposure(command.preview ?? null);
    log(`${command.type} ${job.id} started`);

    let release!: () => void;
    const finished = new Promise<void>((resolve) => (release = resolve));
    const previousDeploy = command.type === "DEPLOY" && latestDeploy ? running.get(latestDeploy.id) : undefined;
    running.set(job.id, { controller, finished });
    try {
      if (command.type === "DEPLOY") {
        // The newest deploy wins: one still waiting for health is stopped first.
        latestDeploy = job;
        if (previousDeploy) {
          previousDeploy.controller.abort();
          await previousDeploy.finished;
        }
      }
      await mkdir(workspace, { recursive: true, mode: 0o700 });
      if (command.type === "BUILD") await runBuild(ctx, command);
      else await runDeploy(ctx, command, project, options.healthTimeoutSeconds);
    } catch (error) {
      log(`${command.type} ${job.id} crashed: ${mask(errorText(error))}`);
      masked.error("AGENT_ERROR", `the agent failed: ${errorText(error)}`);
      job.report("failed", { exit_code: 1 });
    } finally {
      // Stopped by SIGTERM: left unfinished on disk, so the next start reports it as interrupted.
      if (!shuttingDown) store.save(job.id, job.kind, job.lastStatus);
      await rm(workspace, { recursive: true, force: true }).catch(() => undefined);
      running.delete(job.id);
      release();
      log(`${command.type} ${job.id} ${job.state ?? "ended"}`);
    }
  }

  async function stopJobs(): Promise<void> {
    const jobs = [...running.values()];
    for (const job of jobs) job.controller.abort();
    await Promise.all(jobs.map((job) => job.finished));
  }

  /** TERMINATE: running jobs stop (reported terminated), the environment's compose project goes with its volumes. */
  function terminate(reason: string, graceSeconds: number): Promise<void> {
    terminating ??= (async () => {
      log(`TERMINATE: ${reason}`);
      await stopJobs();
      try {
        await project.remove(await getTools(), (_stream, line) => log(`compose: ${line}`));
      } catch (error) {
        log(`could not remove compose project ${project.name}: ${errorText(error)}`);
      }
      // The deploy's containers are gone: its state is terminated now (which also acknowledges the TERMINATE).
      if (latestDeploy?.state === "completed") {
        latestDeploy.report("terminated");
        store.save(latestDeploy.id, latestDeploy.kind, latestDeploy.lastStatus);
      }
      await connection.settle(graceSeconds * 1000);
      await connection.stop();
    })();
    return terminating;
  }

  async function finish(end: ConnectionEnd): Promise<number> {
    if (stopping) {
      await stopping;
      return 0;
    }
    if (terminating) {
      await terminating;
      return 0;
    }
    if (end.reason === "refused" && end.code === closeCodes.revoked) {
      // Revoked without a TERMINATE first: the environment or job is over all the same.
      await terminate("the agent was revoked", 0);
      return 0;
    }
    if (end.reason === "refused") {
      log(`Core refuses this agent (close code ${end.code}); check agent_id, token and version`);
      return EXIT_REFUSED;
    }
    if (end.reason === "gave_up") {
      log("stopping the environment's containers: Core was unreachable for too long");
      await stopJobs();
      await project.stop(await getTools()).catch((error: unknown) => log(`could not stop compose project ${project.name}: ${errorText(error)}`));
    }
    return 0;
  }

  return {
    agentId: connection.agentId,
    project,
    done: connection.done.then(finish),
    stop() {
      // The connection closes first, so the abandoned jobs' reports do not reach Core as if they had been terminated.
      stopping ??= (async () => {
        shuttingDown = true;
        await connection.stop();
        await stopJobs();
      })();
      return stopping;
    },
    resolveService: (target) => resolveServiceAddress(project.name, target),
    resolveExposed,
  };
}

function readExposure(file: string): PreviewExposure | null {
  try {
    const parsed = previewExposure.nullable().safeParse(JSON.parse(readFileSync(file, "utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
