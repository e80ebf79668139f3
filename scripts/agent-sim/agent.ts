// A simulated Stagely agent speaking protocol v1.1 (docs/agent-protocol.md) the way a production agent must: it dials
// Core with its token, says HELLO, heartbeats, reconnects with jittered exponential backoff, answers BUILD, DEPLOY and
// TERMINATE with LOG and STATUS streams, and keeps every unacknowledged log line to resend. A DEPLOY that exposes a
// service opens the preview tunnel (agent/src/tunnel), which serves the built-in test app (test-app.ts) for every
// exposed service. Runs on Node 24 (global WebSocket), and inside workerd tests when given `openSocket` and a
// `resolveTarget`. Used by `npm run agent:sim`, the local cloud, tests and benchmarks.
import { httpUpstream } from "../../agent/src/tunnel/http-upstream.ts";
import { startTunnel, type ResolveTarget, type Tunnel, type Upstream } from "../../agent/src/tunnel/tunnel.ts";
import type { BuildCommand, CoreMessage, DeployCommand, JobState, LogLine, PreviewExposure, ServiceReport } from "../../src/agents/protocol.ts";
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

const PROTOCOL_VERSION = "1.1.0";
const BASE_LINES_PER_SECOND = 50;
const LOG_BATCH_LINES = 200;
const LOG_BATCH_MS = 50;
const RESEND_AFTER_MS = 10_000;
const MAX_UNACKED_LINES = 20_000;
const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set([4001, 4002, 4003]);

type NodeWebSocket = WebSocket & { bufferedAmount?: number };
/** Node's WebSocket (undici) takes headers; the Workers types in this project do not know that. */
const WebSocketWithHeaders = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => NodeWebSocket;
const openWithHeaders = async (url: string, headers: Record<string, string>): Promise<WebSocket> => new WebSocketWithHeaders(url, { headers });

interface Job {
  id: string;
  kind: "build" | "deploy";
  nextSeq: number;
  /** Sent or not, kept until a LOG_ACK covers them; `sentAt` 0 = not sent on the current connection. */
  unacked: { line: LogLine; sentAt: number }[];
  /** Lines waiting to be batched into the next LOG frame. */
  batch: LogLine[];
  lastStatus: Record<string, unknown> | null;
  cancelled: boolean;
}

export function startSimulatedAgent(options: SimulatedAgentOptions): SimulatedAgent {
  const agentId = options.agentId ?? agentIdOf(options.token);
  const speed = options.speed ?? 1;
  const fast = !Number.isFinite(speed) || speed <= 0;
  const log = options.log ?? ((line: string) => console.log(line));
  const say = (text: string) => log(`[agent ${agentId}] ${text}`);
  const giveUpMs = (options.giveUpAfterSeconds ?? 15 * 60) * 1000;
  const startedAt = Date.now();
  const url = `${options.coreUrl.replace(/^http/, "ws").replace(/\/+$/, "")}/v1/agent/connect`;

  const jobs = new Map<string, Job>();
  const stats = { connects: 0, linesSent: 0, linesAcked: 0 };
  let ws: NodeWebSocket | null = null;
  let ready = false;
  let stopped = false;
  let failures = 0;
  let lastContact = Date.now();
  let heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let tunnel: Tunnel | null = null;
  let exposure: PreviewExposure | null = null;
  let appServer: Promise<{ port: number; stop(): Promise<void> }> | null = null;
  let appUpstream: Promise<Upstream> | null = null;

  /** Only what the last DEPLOY exposed, mapped to the test app: never an address a request names. */
  const resolveExposed: ResolveTarget = (target) => {
    const exposed = [...(exposure?.expose ? [exposure.expose] : []), ...(exposure?.routes ?? [])];
    if (!exposed.some((e) => e.service === target.service && e.port === target.port)) return null;
    if (options.resolveTarget) return options.resolveTarget(target);
    appUpstream ??= (async () => {
      const { startTestAppServer } = await import("./test-app-server.ts");
      appServer = startTestAppServer();
      return httpUpstream({ host: "127.0.0.1", port: (await appServer).port });
    })();
    return appUpstream;
  };

  function openTunnel(command: DeployCommand): void {
    exposure = command.preview ?? null;
    if (tunnel || !exposure) return;
    tunnel = startTunnel({ coreUrl: options.coreUrl, token: options.token, agentId, resolveTarget: resolveExposed, openSocket: options.openSocket, log });
  }

  const send = (message: Record<string, unknown>): boolean => {
    if (!ws || !ready || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  };

  // ---- connection

  async function connect(): Promise<void> {
    if (stopped) return;
    let socket: NodeWebSocket;
    try {
      socket = await (options.openSocket ?? openWithHeaders)(url, { Authorization: `Bearer ${options.token}` });
    } catch (error) {
      say(`could not connect: ${error instanceof Error ? error.message : String(error)}`);
      return scheduleReconnect(1006);
    }
    if (stopped) {
      socket.close(1000, "agent stopping");
      return;
    }
    ws = socket;
    const hello = () =>
      socket.send(
        JSON.stringify({
          type: "HELLO",
          version: PROTOCOL_VERSION,
          agent_id: agentId,
          system_info: {
            hostname: `sim-${agentId.slice(4, 12)}`,
            ip_address: "10.0.0.2",
            architecture: "amd64",
            os: "Ubuntu 24.04.1 LTS (simulated)",
            docker_version: "27.3.1 (simulated)",
          },
        }),
      );
    if (socket.readyState === WebSocket.OPEN) hello();
    else socket.addEventListener("open", hello);
    socket.addEventListener("message", (event) => {
      if (ws !== socket) return;
      lastContact = Date.now();
      let message: CoreMessage;
      try {
        message = JSON.parse(String(event.data)) as CoreMessage;
      } catch {
        say("ignored a frame that is not JSON");
        return;
      }
      handle(message);
      options.onMessage?.(message);
    });
    socket.addEventListener("close", (event) => {
      if (ws !== socket) return;
      ws = null;
      ready = false;
      clearInterval(heartbeatTimer);
      for (const job of jobs.values()) for (const entry of job.unacked) entry.sentAt = 0;
      if (stopped) return finish();
      if (FINAL_CLOSE_CODES.has(event.code)) {
        say(`Core closed the connection for good (${event.code} ${event.reason}); stopping`);
        return void stop();
      }
      scheduleReconnect(event.code);
    });
    socket.addEventListener("error", () => {
      // A close event follows; a refused upgrade (401) also lands there.
    });
  }

  function scheduleReconnect(code: number): void {
    if (Date.now() - lastContact > giveUpMs) {
      say(`no contact with Core for ${Math.round(giveUpMs / 60_000)} minutes: stopping containers and exiting`);
      return void stop();
    }
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** failures);
    failures++;
    const delay = Math.round(cap * (0.5 + Math.random() / 2));
    say(`connection closed (${code}); reconnecting in ${(delay / 1000).toFixed(1)} s`);
    reconnectTimer = setTimeout(() => void connect(), delay);
  }

  // ---- messages from Core

  function handle(message: CoreMessage): void {
    switch (message.type) {
      case "HELLO_ACK": {
        ready = true;
        failures = 0;
        stats.connects++;
        const interval = (options.heartbeatIntervalSeconds ?? message.heartbeat_interval) * 1000;
        clearInterval(heartbeatTimer);
        heartbeatTimer = setInterval(heartbeat, interval);
        say(`connected (heartbeat every ${interval / 1000} s)`);
        for (const job of jobs.values()) {
          resendUnacked(job, 0);
          if (job.lastStatus) send(job.lastStatus);
        }
        return;
      }
      case "LOG_ACK": {
        const job = jobs.get(message.job_id);
        if (!job) return;
        const before = job.unacked.length;
        job.unacked = job.unacked.filter((entry) => entry.line.seq > message.seq);
        stats.linesAcked += before - job.unacked.length;
        return;
      }
      case "BUILD":
      case "DEPLOY": {
        const existing = jobs.get(message.job_id);
        if (existing) {
          // Delivered again (Core had no STATUS for it yet): report where it stands instead of starting over.
          if (existing.lastStatus) send(existing.lastStatus);
          return;
        }
        if (message.type === "DEPLOY") openTunnel(message);
        const job: Job = { id: message.job_id, kind: message.type === "BUILD" ? "build" : "deploy", nextSeq: 1, unacked: [], batch: [], lastStatus: null, cancelled: false };
        jobs.set(job.id, job);
        const run = message.type === "BUILD" ? runBuild(job, message) : runDeploy(job, message);
        run.catch((error: unknown) => say(`job ${job.id} crashed: ${error instanceof Error ? error.message : String(error)}`));
        return;
      }
      case "TERMINATE":
        void terminate(message.reason, message.grace_period_seconds);
        return;
      case "PING":
        send({ type: "PONG", timestamp: new Date().toISOString() });
        return;
      case "STATUS_REQUEST":
        heartbeat();
        for (const job of jobs.values()) if (job.lastStatus) send(job.lastStatus);
        return;
      case "ERROR":
        say(`Core reported ${message.code}: ${message.message}`);
        return;
      case "HEARTBEAT_ACK":
        return;
    }
  }

  function heartbeat(): void {
    // A simulated machine: busier while a job runs.
    const busy = [...jobs.values()].some((job) => !job.lastStatus || job.lastStatus.state === "running") ? 1.6 : 0.1;
    send({
      type: "HEARTBEAT",
      timestamp: new Date().toISOString(),
      uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
      load_average: [busy, busy * 0.8, busy * 0.5],
      memory_usage: { total_mb: 7937, available_mb: busy > 1 ? 3120 : 6410 },
      disk_usage: { total_gb: 80, available_gb: 52 },
    });
  }

  // ---- jobs

  function report(job: Job, state: JobState, extra: Record<string, unknown> = {}): void {
    job.lastStatus = { type: "STATUS", job_id: job.id, state, ...extra };
    send(job.lastStatus);
  }

  function emit(job: Job, stream: "stdout" | "stderr", data: string): void {
    const line: LogLine = { seq: job.nextSeq++, stream, timestamp: new Date().toISOString(), data };
    job.unacked.push({ line, sentAt: 0 });
    job.batch.push(line);
    if (job.batch.length >= LOG_BATCH_LINES) flushBatch(job);
  }

  function flushBatch(job: Job): void {
    if (job.batch.length === 0) return;
    const lines = job.batch;
    job.batch = [];
    if (send({ type: "LOG", job_id: job.id, lines })) {
      stats.linesSent += lines.length;
      const now = Date.now();
      const sent = new Set(lines.map((l) => l.seq));
      for (const entry of job.unacked) if (sent.has(entry.line.seq)) entry.sentAt = now;
    }
  }

  /** Sends again what Core has not acknowledged: everything after a reconnect, or lines unacknowledged for too long. */
  function resendUnacked(job: Job, olderThan: number): void {
    const due = job.unacked.filter((entry) => entry.sentAt <= olderThan);
    for (let i = 0; i < due.length; i += 500) {
      const chunk = due.slice(i, i + 500);
      if (!send({ type: "LOG", job_id: job.id, lines: chunk.map((e) => e.line) })) return;
      const now = Date.now();
      for (const entry of chunk) entry.sentAt = now;
      stats.linesSent += chunk.length;
    }
  }

  async function pace(lines: number): Promise<void> {
    // Never run away from Core: wait while too much is unacknowledged or still in the socket's buffer.
    while (!stopped && (unackedTotal() > MAX_UNACKED_LINES || (ws?.bufferedAmount ?? 0) > 8 * 2 ** 20)) await sleep(20);
    if (!fast) await sleep((lines * 1000) / (BASE_LINES_PER_SECOND * speed));
  }

  async function runBuild(job: Job, command: BuildCommand): Promise<void> {
    const started = Date.now();
    say(`BUILD ${job.id}: ${command.build_config.target_image} (${command.build_config.platform})`);
    report(job, "running");
    const lines = buildLog({
      image: command.build_config.target_image,
      dockerfile: command.build_config.dockerfile,
      platform: command.build_config.platform,
      count: options.linesPerBuild ?? 200,
      fail: options.failBuilds ?? false,
    });
    const step = fast ? LOG_BATCH_LINES : 1;
    for (let i = 0; i < lines.length; i += step) {
      if (job.cancelled || stopped) return;
      for (const line of lines.slice(i, i + step)) emit(job, line.stream, line.data);
      await pace(step);
    }
    flushBatch(job);
    const duration_seconds = Math.round((Date.now() - started) / 100) / 10;
    if (options.failBuilds) {
      report(job, "failed", { exit_code: 2, duration_seconds });
    } else {
      const digest = Array.from({ length: 64 }, () => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");
      report(job, "completed", { exit_code: 0, duration_seconds, artifact_url: `${command.build_config.target_image}@sha256:${digest}` });
    }
    say(`BUILD ${job.id} ${options.failBuilds ? "failed" : "completed"} after ${duration_seconds} s, ${lines.length} lines`);
  }

  async function runDeploy(job: Job, command: DeployCommand): Promise<void> {
    const started = Date.now();
    const names = Object.keys(command.images);
    say(`DEPLOY ${job.id}: ${names.join(", ") || "no services"}`);
    const services = (health: string): ServiceReport[] =>
      names.map((name, i) => ({ name, status: "running", container_id: `sim${i}${job.id.slice(-8)}`, port: 3000 + i, health }));
    report(job, "running", { services: services("starting") });
    await pace(fast ? 0 : BASE_LINES_PER_SECOND * 2);
    if (job.cancelled || stopped) return;
    for (const hook of command.lifecycle.on_start) say(`DEPLOY ${job.id}: ran "${hook.command}" in ${hook.service}`);
    for (const name of names) emit(job, "stdout", `Container ${name}  Started`);
    if (options.failDeploys) {
      emit(job, "stderr", `${names[0] ?? "app"}  | Error: listen EADDRINUSE: address already in use :::3000`);
      emit(job, "stderr", `${names[0] ?? "app"} exited with code 1`);
      flushBatch(job);
      report(job, "failed", { services: names.map((name, i) => ({ name, status: i === 0 ? "exited" : "running", health: i === 0 ? "unhealthy" : "healthy" })) });
      return;
    }
    flushBatch(job);
    report(job, "completed", { services: services("healthy"), duration_seconds: Math.round((Date.now() - started) / 100) / 10 });
  }

  async function terminate(reason: string, graceSeconds: number): Promise<void> {
    say(`TERMINATE: ${reason}`);
    for (const job of jobs.values()) {
      const state = job.lastStatus?.state;
      if (state === "completed" || state === "failed" || state === "terminated") continue;
      job.cancelled = true;
      flushBatch(job);
      report(job, "terminated");
    }
    // Give Core the grace period to take the remaining lines, then stop.
    const deadline = Date.now() + (fast ? Math.min(graceSeconds, 2) : graceSeconds) * 1000;
    while (unackedTotal() > 0 && Date.now() < deadline) await sleep(100);
    await stop();
  }

  const unackedTotal = () => [...jobs.values()].reduce((n, job) => n + job.unacked.length, 0);

  const batchTimer = setInterval(() => {
    for (const job of jobs.values()) flushBatch(job);
  }, LOG_BATCH_MS);
  const resendTimer = setInterval(() => {
    if (!ready) return;
    for (const job of jobs.values()) resendUnacked(job, Date.now() - RESEND_AFTER_MS);
  }, RESEND_AFTER_MS / 2);

  let finished = false;
  function finish(): void {
    if (finished) return;
    finished = true;
    clearInterval(batchTimer);
    clearInterval(resendTimer);
    clearInterval(heartbeatTimer);
    clearTimeout(reconnectTimer);
    resolveDone();
  }

  async function stop(): Promise<void> {
    if (!stopped) {
      stopped = true;
      clearTimeout(reconnectTimer);
      await tunnel?.stop();
      await (await appServer)?.stop();
      if (ws && ws.readyState !== WebSocket.CLOSED) {
        ws.close(1000, "agent stopping");
        // The close event normally finishes; do not hang on a peer that never answers the close.
        setTimeout(finish, 2_000);
      } else finish();
    }
    await done;
  }

  void connect();
  return {
    agentId,
    stop,
    done,
    stats: () => ({ ...stats, unacked: unackedTotal() }),
    tunnel: () => tunnel,
  };
}

function agentIdOf(token: string): string {
  const match = /^stg_agt_([0-9a-z]{16})_[0-9a-f]{64}$/.exec(token);
  if (!match) throw new Error("not an agent token (stg_agt_<id>_<secret>)");
  return `agt_${match[1]}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
