// A simulated Stagely agent: the real agent's control connection (agent/src/control-connection.ts: HELLO,
// heartbeats, backoff, close codes, the unacknowledged-line buffer) with simulated jobs instead of Docker. BUILD
// streams plausible build output, DEPLOY reports services, TERMINATE stops. A DEPLOY that exposes a service opens the
// preview tunnel (agent/src/tunnel), which serves the built-in test app (test-app.ts) for every exposed service. Runs
// on Node 24 (global WebSocket), and inside workerd tests when given `openSocket` and a `resolveTarget`. Used by
// `npm run agent:sim`, the local cloud without Docker, tests and benchmarks.
import { agentIdOfToken, openControlConnection, type JobChannel } from "../../agent/src/control-connection.ts";
import { exposedResolver } from "../../agent/src/tunnel/exposure.ts";
import { httpUpstream } from "../../agent/src/tunnel/http-upstream.ts";
import { startTunnel, type ResolveTarget, type Tunnel, type Upstream } from "../../agent/src/tunnel/tunnel.ts";
import { AGENT_VERSION } from "../../agent/src/version.ts";
import type { BuildCommand, CoreMessage, DeployCommand, PreviewExposure, ServiceReport } from "../../src/agents/protocol.ts";
import { buildLog } from "./build-log.ts";

export interface SimulatedAgentOptions {
  /** Core's base URL, e.g. http://127.0.0.1:8787 (the agent dials <coreUrl>/v1/agent/connect). */
  coreUrl: string;
  token: string;
  /** Defaults to the id inside the token. */
  agentId?: string;
  /** 1 = a realistic pace (50 log lines/s, deploys of a few seconds); 10 = ten times faster; Infinity = as fast as possible. */
  speed?: number;
  /** Builds fail (exit code 2) instead of succeeding. */
  failBuilds?: boolean;
  /** Deploys fail (a service exits) after printing compose output, instead of becoming healthy. */
  failDeploys?: boolean;
  /** Log lines a build produces (default 200). */
  linesPerBuild?: number;
  /** Overrides the interval Core announces in HELLO_ACK. */
  heartbeatIntervalSeconds?: number;
  log?: (line: string) => void;
  /** Every message from Core, after the agent handled it (for tests and benchmarks). */
  onMessage?: (message: CoreMessage) => void;
  /** Stop after this long without Core (default 15 minutes, as the protocol says). */
  giveUpAfterSeconds?: number;
  /**
   * Opens the connection (the URL is <coreUrl>/v1/agent/connect, the headers carry the token). By default Node's
   * global WebSocket; tests inside workerd pass one that goes through the Worker's fetch and returns the accepted socket.
   */
  openSocket?: (url: string, headers: Record<string, string>) => Promise<WebSocket>;
  /**
   * Where exposed services are reached through the preview tunnel. Default (Node): the built-in test app on a port
   * of its own. Only targets the last DEPLOY exposed are ever asked for.
   */
  resolveTarget?: ResolveTarget;
}

export interface SimulatedAgent {
  agentId: string;
  stop(): Promise<void>;
  /** Resolves when the agent has stopped, by stop(), TERMINATE, a refusal (revoked, version) or giving up. */
  done: Promise<void>;
  stats(): { connects: number; linesSent: number; linesAcked: number; unacked: number };
  /** The preview tunnel, once a DEPLOY exposed something. */
  tunnel(): Tunnel | null;
}

const BASE_LINES_PER_SECOND = 50;
const FAST_STEP_LINES = 200;

export function startSimulatedAgent(options: SimulatedAgentOptions): SimulatedAgent {
  const speed = options.speed ?? 1;
  const fast = !Number.isFinite(speed) || speed <= 0;
  const log = options.log ?? ((line: string) => console.log(line));
  const agentId = options.agentId ?? agentIdOfToken(options.token);
  const say = (text: string) => log(`[agent ${agentId}] ${text}`);
  const startedAt = Date.now();
  const cancelled = new Set<string>();
  let stopped = false;
  let tunnel: Tunnel | null = null;
  let exposure: PreviewExposure | null = null;
  let appServer: Promise<{ port: number; stop(): Promise<void> }> | null = null;
  let appUpstream: Promise<Upstream> | null = null;

  /** Only what the last DEPLOY exposed, mapped to the test app: never an address a request names. */
  const resolveExposed = exposedResolver(
    () => exposure,
    (target) => {
      if (options.resolveTarget) return options.resolveTarget(target);
      appUpstream ??= (async () => {
        const { startTestAppServer } = await import("./test-app-server.ts");
        appServer = startTestAppServer();
        return httpUpstream({ host: "127.0.0.1", port: (await appServer).port });
      })();
      return appUpstream;
    },
  );

  function openTunnel(command: DeployCommand): void {
    exposure = command.preview ?? null;
    if (tunnel || !exposure) return;
    tunnel = startTunnel({ coreUrl: options.coreUrl, token: options.token, agentId, resolveTarget: resolveExposed, openSocket: options.openSocket, log });
  }

  const busy = () => connection.jobs().some((job) => !job.finished);
  const connection = openControlConnection({
    coreUrl: options.coreUrl,
    token: options.token,
    agentId,
    version: AGENT_VERSION,
    heartbeatIntervalSeconds: options.heartbeatIntervalSeconds,
    giveUpAfterSeconds: options.giveUpAfterSeconds,
    onMessage: options.onMessage,
    openSocket: options.openSocket,
    log: say,
    systemInfo: () => ({
      hostname: `sim-${agentId.slice(4, 12)}`,
      ip_address: "10.0.0.2",
      architecture: "amd64",
      os: "Ubuntu 24.04.1 LTS (simulated)",
      docker_version: "27.3.1 (simulated)",
      compose_version: "2.29.1 (simulated)",
    }),
    // A simulated machine: busier while a job runs.
    load: () => {
      const load = busy() ? 1.6 : 0.1;
      return {
        uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
        load_average: [load, load * 0.8, load * 0.5],
        memory_usage: { total_mb: 7937, available_mb: load > 1 ? 3120 : 6410 },
        disk_usage: { total_gb: 80, available_gb: 52 },
      };
    },
    handlers: {
      onJob: (job, command) => {
        if (command.type === "DEPLOY") openTunnel(command);
        const run = command.type === "BUILD" ? runBuild(job, command) : runDeploy(job, command);
        run.catch((error: unknown) => say(`job ${job.id} crashed: ${error instanceof Error ? error.message : String(error)}`));
      },
      onTerminate: (reason, graceSeconds) => void terminate(reason, graceSeconds),
    },
  });
  const halted = (job: JobChannel) => stopped || cancelled.has(job.id);

  async function pace(lines: number): Promise<void> {
    // Never run away from Core: wait while too much is unacknowledged or still in the socket's buffer.
    await connection.room();
    if (!fast) await sleep((lines * 1000) / (BASE_LINES_PER_SECOND * speed));
  }

  async function runBuild(job: JobChannel, command: BuildCommand): Promise<void> {
    const started = Date.now();
    say(`BUILD ${job.id}: ${command.build_config.target_image} (${command.build_config.platform})`);
    job.report("running");
    const lines = buildLog({
      image: command.build_config.target_image,
      dockerfile: command.build_config.dockerfile,
      platform: command.build_config.platform,
      count: options.linesPerBuild ?? 200,
      fail: options.failBuilds ?? false,
    });
    const step = fast ? FAST_STEP_LINES : 1;
    for (let i = 0; i < lines.length; i += step) {
      if (halted(job)) return;
      for (const line of lines.slice(i, i + step)) job.log(line.stream, line.data);
      await pace(step);
    }
    const duration_seconds = Math.round((Date.now() - started) / 100) / 10;
    if (options.failBuilds) {
      job.report("failed", { exit_code: 2, duration_seconds });
    } else {
      const digest = Array.from({ length: 64 }, () => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");
      job.report("completed", { exit_code: 0, duration_seconds, artifact_url: `${command.build_config.target_image}@sha256:${digest}` });
    }
    say(`BUILD ${job.id} ${options.failBuilds ? "failed" : "completed"} after ${duration_seconds} s, ${lines.length} lines`);
  }

  async function runDeploy(job: JobChannel, command: DeployCommand): Promise<void> {
    const started = Date.now();
    const names = Object.keys(command.images);
    say(`DEPLOY ${job.id}: ${names.join(", ") || "no services"}`);
    const services = (health: string): ServiceReport[] =>
      names.map((name, i) => ({ name, status: "running", container_id: `sim${i}${job.id.slice(-8)}`, port: 3000 + i, health }));
    job.report("running", { services: services("starting") });
    await pace(fast ? 0 : BASE_LINES_PER_SECOND * 2);
    if (halted(job)) return;
    for (const hook of command.lifecycle.on_start) say(`DEPLOY ${job.id}: ran "${hook.command}" in ${hook.service}`);
    for (const name of names) job.log("stdout", `Container ${name}  Started`);
    if (options.failDeploys) {
      job.log("stderr", `${names[0] ?? "app"}  | Error: listen EADDRINUSE: address already in use :::3000`);
      job.log("stderr", `${names[0] ?? "app"} exited with code 1`);
      job.report("failed", { services: names.map((name, i) => ({ name, status: i === 0 ? "exited" : "running", health: i === 0 ? "unhealthy" : "healthy" })) });
      return;
    }
    job.report("completed", { services: services("healthy"), duration_seconds: Math.round((Date.now() - started) / 100) / 10 });
  }

  async function terminate(reason: string, graceSeconds: number): Promise<void> {
    say(`TERMINATE: ${reason}`);
    for (const job of connection.jobs()) {
      if (job.finished) continue;
      cancelled.add(job.id);
      job.report("terminated");
    }
    // Give Core the grace period to take the remaining lines, then stop.
    await connection.settle((fast ? Math.min(graceSeconds, 2) : graceSeconds) * 1000);
    await stop();
  }

  async function stop(): Promise<void> {
    stopped = true;
    await connection.stop();
    await tunnel?.stop();
    await (await appServer)?.stop();
  }

  return {
    agentId,
    stop,
    done: connection.done.then(() => {
      stopped = true;
    }),
    stats: connection.stats,
    tunnel: () => tunnel,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
