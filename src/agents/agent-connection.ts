import { DurableObject } from "cloudflare:workers";
import { getConfig } from "../config.ts";
import { databaseErrorOf, getDb, type Db } from "../db/client.ts";
import { keyringFromConfig, timingSafeEqual, type Keyring } from "../lib/crypto.ts";
import { Logger, type LogLevel } from "../lib/logger.ts";
import { recordConnected, recordDisconnected, recordSeen, type AgentRef } from "./agent-records.ts";
import { CommandQueue } from "./command-queue.ts";
import { takeConnectToken } from "./connect-limit.ts";
import { insertLogLines, type JobLogLine } from "./job-logs.ts";
import { applyBuildReport } from "./job-reports.ts";
import { KnownJobs } from "./known-jobs.ts";
import { LogBuffer, type LogLimits } from "./log-buffer.ts";
import { AssignmentMasker, loadProjectMasker, type MaskerInUse, type SecretsOwner } from "./masking.ts";
import { Outbox } from "./outbox.ts";
import {
  CommandTooLargeError,
  HEARTBEAT_INTERVAL_SECONDS,
  MAX_FRAME_BYTES,
  MAX_LINE_CHARS,
  MISSED_HEARTBEATS,
  agentCommand,
  closeCodes,
  parseAgentFrame,
  utf8Length,
  type AgentCommandInput,
  type AgentErrorMessage,
  type CoreMessage,
  type HeartbeatMessage,
  type HelloMessage,
  type LogMessage,
  type StatusMessage,
} from "./protocol.ts";
import { bearerToken, hashAgentToken } from "./tokens.ts";

/**
 * Lines are written to Postgres when this many (or MAX_INSERT_CHARS of text) are buffered for a job, or
 * FLUSH_DELAY_MS after the first one arrived.
 */
export const FLUSH_LINES = 1000;
export const FLUSH_DELAY_MS = 1000;
/**
 * Inserts of one job's lines in flight at once: the next batch travels while the database writes the previous one.
 * They take different lines (LogBuffer.take); the acknowledgement cursor moves only over lines all stored.
 */
const INSERTS_IN_FLIGHT = 2;
/** How many of a deploy's last log lines are kept (and sent with a failure). */
export const DEPLOY_TAIL_LINES = 50;
/** One insert carries at most this much text (a few very long lines must not make one huge request). */
const MAX_INSERT_CHARS = 2_000_000;
/** Heartbeats refresh `last_seen_at` in Postgres at most this often. */
export const SEEN_WRITE_INTERVAL_MS = 60_000;
/**
 * A closed connection is recorded as disconnected only after this long, so an agent that reconnects within it (a
 * reconnect loop, a Core deploy) costs no database write for the close nor for its next HELLO.
 */
export const DISCONNECT_GRACE_MS = 60_000;
/** Buffered for one job beyond this, LOG frames wait for inserts instead of buffering more (memory is bounded). */
const MAX_BUFFERED_LINES = 10 * FLUSH_LINES;
const MAX_BUFFERED_BYTES = 4 * MAX_INSERT_CHARS;
/** Tries of one insert whose secrets changed under it (masked again each time) before it is left to the alarm. */
const MASK_RETRIES = 3;
const RETRY_MS = 5_000;
/** A live tail that falls this many chunks behind is dropped (its client resumes from the database with Last-Event-ID). */
const MAX_TAIL_BACKLOG = 1000;

export type AgentRole = "builder" | "preview";

/** What `issueAgentToken` tells the agent's Durable Object. */
export interface AgentRegistration {
  agentId: string;
  tokenHash: string;
  role: AgentRole;
  buildJobId: string | null;
  environmentId: string | null;
}

interface Identity extends AgentRegistration {
  revoked: boolean;
}

/** The last HELLO and the address it came from, as written to `agent_connections`. */
interface HelloRecord {
  hello: HelloMessage;
  ip: string | null;
}

/**
 * What survives the connection, in storage. Written when the database is (at most about once a minute while the
 * agent heartbeats) and when the socket closes: the per-message liveness lives in the socket's attachment.
 */
interface Session {
  /** What `agent_connections.status` holds as far as this object knows ("stale": a write is owed). */
  dbState: "connected" | "disconnected" | "stale";
  lastDbWriteAt: number;
  /** When the agent last sent anything (ms), as of the last write. */
  lastSeenAt: number;
  heartbeat: HeartbeatMessage | null;
}

/**
 * Per connection, kept by the runtime with the hibernated socket (free, unlike a storage write per message):
 * identity of the connection and its liveness.
 */
interface Attachment {
  connectionId: string;
  ip: string | null;
  helloed: boolean;
  /** When the agent last sent anything on this connection (ms). */
  lastSeenAt: number;
  /** When Core sent PING because the agent went quiet; null while it is talking. */
  pingedAt: number | null;
  heartbeat: HeartbeatMessage | null;
}

export interface AgentState {
  agent_id: string;
  role: AgentRole;
  build_job_id: string | null;
  environment_id: string | null;
  revoked: boolean;
  connected: boolean;
  last_seen_at: string | null;
  pending_commands: number;
  pending_log_lines: number;
  last_heartbeat: HeartbeatMessage | null;
  log_inserts: number;
  log_lines_stored: number;
}

/** One line of the NDJSON stream `tailLogs` returns. */
export type TailEvent = ({ type: "line" } & JobLogLine) | { type: "ping" } | { type: "end" };

const HEARTBEAT_MS = HEARTBEAT_INTERVAL_SECONDS * 1000;
const encoder = new TextEncoder();
const encodeEvents = (events: TailEvent[]) => encoder.encode(events.map((e) => `${JSON.stringify(e)}\n`).join(""));

/**
 * One instance per VM agent (named by its agent id): authenticates the agent's WebSocket, speaks protocol v1 with
 * it through the Hibernation API, and keeps in its storage what must survive eviction: identity, session,
 * pending commands, buffered log lines and cursors, reports and queue events not yet delivered.
 *
 * Agent messages are handled one at a time, in arrival order. Database work (log inserts, job updates, presence)
 * is retried from the alarm when it fails; the one alarm is always set to the earliest thing due.
 */
export class AgentConnection extends DurableObject<Env> {
  private readonly logs: LogBuffer;
  private readonly commands: CommandQueue;
  private readonly jobs: KnownJobs;
  private readonly outbox: Outbox;
  private readonly chains = new Map<string, Promise<unknown>>();
  private draining: Promise<void> | null = null;
  private drainAgain = false;
  private drainForce = false;
  /** Wakes a flush waiting for its inserts: lines arrived, so another insert may start. */
  private linesArrived: (() => void) | null = null;
  private keyring: Promise<Keyring> | null = null;
  private assignmentMasker: AssignmentMasker | null = null;
  private readonly tails = new Map<string, Set<ReadableStreamDefaultController<Uint8Array>>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.logs = new LogBuffer(ctx.storage);
    this.commands = new CommandQueue(ctx.storage.sql, {
      seal: async (text) => (await this.getKeyring()).encrypt(text, this.commandAad()),
      open: async (sealed) => (await this.getKeyring()).decrypt(sealed, this.commandAad()),
    });
    this.jobs = new KnownJobs(ctx.storage.sql);
    this.outbox = new Outbox(ctx.storage.sql);
  }

  // ---------------------------------------------------------------- RPC: Core's internal API

  /** Called once per agent, by `registerAgent` (src/agents/issue-token.ts). Registering the same identity again is a no-op; a different one is refused. */
  async register(registration: AgentRegistration): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(registration.tokenHash)) throw new TypeError("tokenHash must be a hex SHA-256");
    const existing = this.identity();
    if (existing) {
      if (existing.agentId === registration.agentId && existing.tokenHash === registration.tokenHash) return;
      throw new Error("this agent is already registered with another token");
    }
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.kv.put<Identity>("identity", { ...registration, revoked: false });
      if (registration.buildJobId) this.jobs.add(registration.buildJobId, "build");
    });
  }

  /**
   * Queues BUILD, DEPLOY or TERMINATE and sends it now if the agent is connected (otherwise on its next HELLO).
   * Commands are delivered in the order they were queued. Throws on an invalid command or a revoked/unknown agent.
   * `unlessKnown`: a BUILD or DEPLOY for a job this agent already has is not queued again (id null).
   */
  async sendCommand(input: AgentCommandInput, options: { unlessKnown?: boolean } = {}): Promise<{ id: number | null; delivered: boolean }> {
    const command = agentCommand.parse(input);
    const bytes = utf8Length(JSON.stringify(command));
    if (bytes > MAX_FRAME_BYTES) throw new CommandTooLargeError(command, bytes);
    // Not behind agent messages (a slow database must not delay a command): its own queue keeps commands in order.
    return this.serial("commands", async () => {
      const identity = this.identity();
      if (!identity) throw new Error("unknown agent (never registered, or retired and its storage deleted)");
      if (identity.revoked) throw new Error("the agent is revoked");
      // A preview agent builds too: in default mode (no registry) a run's images are built on the preview VM itself.
      if (command.type === "DEPLOY" && identity.role !== "preview") throw new Error("DEPLOY is for preview agents");
      // A replay (a retried or fallback message) of a job the agent already has: checked here, in the command queue's
      // order, so two deliveries racing each other still queue it once.
      if (options.unlessKnown && command.type !== "TERMINATE" && this.jobs.get(command.job_id)) return { id: null, delivered: false };
      const sealed = await this.commands.seal(command);
      const id = this.ctx.storage.transactionSync(() => {
        if (command.type === "BUILD") this.jobs.add(command.job_id, "build");
        if (command.type === "DEPLOY") this.jobs.add(command.job_id, "deploy");
        return this.commands.store(sealed);
      });
      const ws = this.helloedSocket();
      if (ws) await this.deliverCommands(ws);
      return { id, delivered: ws !== undefined };
    });
  }

  /** Asks a connected agent to report the state of its jobs. False when it is not connected. */
  async requestStatus(): Promise<boolean> {
    const ws = this.helloedSocket();
    if (ws) this.send(ws, { type: "STATUS_REQUEST" });
    return ws !== undefined;
  }

  /**
   * Refuses the token from now on (environment or job terminated): closes the socket, drops pending commands,
   * ends live tails. Lines already received are still stored. With a reason, a connected agent first gets TERMINATE.
   */
  async revoke(terminateReason?: string): Promise<void> {
    return this.serial("agent", async () => {
      const identity = this.identity();
      if (!identity) return;
      // A connected agent is told to stop first (an offline one never comes back: its token is refused).
      const ws = terminateReason && !identity.revoked ? this.helloedSocket() : undefined;
      if (ws) this.send(ws, { type: "TERMINATE", reason: terminateReason!, grace_period_seconds: 30 });
      if (!identity.revoked) this.ctx.storage.kv.put<Identity>("identity", { ...identity, revoked: true });
      this.commands.clear();
      for (const ws of this.openSockets()) this.closeSocket(ws, closeCodes.revoked, "agent revoked");
      for (const jobId of [...this.tails.keys()]) this.endTails(jobId);
      await this.attempt(() => this.syncPresence());
      await this.drain(true);
      await this.clearIfRetired();
    });
  }

  /** The agent a token belongs to, if it is this agent's and not revoked: the preview tunnel's connect asks (no query). */
  async authenticate(token: string): Promise<{ agentId: string; role: AgentRole; environmentId: string | null } | null> {
    const identity = this.identity();
    if (!identity || identity.revoked || !timingSafeEqual(await hashAgentToken(token), identity.tokenHash)) return null;
    return { agentId: identity.agentId, role: identity.role, environmentId: identity.environmentId };
  }

  async getState(): Promise<AgentState | null> {
    const identity = this.identity();
    if (!identity) return null;
    const lastSeen = this.lastSeen();
    const stats = this.stats();
    return {
      agent_id: identity.agentId,
      role: identity.role,
      build_job_id: identity.buildJobId,
      environment_id: identity.environmentId,
      revoked: identity.revoked,
      connected: this.helloedSocket() !== undefined,
      last_seen_at: lastSeen ? new Date(lastSeen).toISOString() : null,
      pending_commands: this.commands.count(),
      pending_log_lines: this.logs.totalPending(),
      last_heartbeat: this.currentAttachment()?.heartbeat ?? this.session().heartbeat,
      log_inserts: stats.inserts,
      log_lines_stored: stats.lines,
    };
  }

  /**
   * A live tail of a job's log lines as NDJSON (`TailEvent` per line): first the buffered lines above `afterSeq`
   * that are not in Postgres yet, then every new line as it arrives, then `{"type":"end"}` when the job finishes.
   * Lines already in Postgres are the caller's to read (see streamJobLogs, which subscribes before reading).
   */
  tailLogs(jobId: string, afterSeq: number): ReadableStream<Uint8Array> {
    let subscriber: ReadableStreamDefaultController<Uint8Array> | undefined;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        subscriber = controller;
        const identity = this.identity();
        const buffered: TailEvent[] = identity ? this.logs.pendingAfter(jobId, afterSeq).map((line) => ({ type: "line", ...line })) : [];
        const job = identity ? this.jobs.get(jobId) : undefined;
        if (!job || job.finished || identity?.revoked) {
          controller.enqueue(encodeEvents([...buffered, { type: "end" }]));
          controller.close();
          return;
        }
        if (buffered.length > 0) controller.enqueue(encodeEvents(buffered));
        let set = this.tails.get(jobId);
        if (!set) this.tails.set(jobId, (set = new Set()));
        set.add(controller);
      },
      cancel: () => {
        if (subscriber) this.tails.get(jobId)?.delete(subscriber);
      },
    });
  }

  // ---------------------------------------------------------------- connect

  /** The agent's WebSocket upgrade, forwarded by the Worker: 401 unless the token matches, 426 unless an upgrade. */
  override async fetch(request: Request): Promise<Response> {
    const identity = this.identity();
    const token = bearerToken(request.headers.get("Authorization"));
    const presented = token ? await hashAgentToken(token) : "";
    if (!identity || identity.revoked || !timingSafeEqual(presented, identity.tokenHash)) {
      const reason = !identity ? "unknown agent" : identity.revoked ? "revoked" : "token mismatch";
      this.logger().warn("agent connect refused", { reason });
      return new Response(null, { status: 401 });
    }
    if ((request.headers.get("Upgrade") ?? "").toLowerCase() !== "websocket") return new Response(null, { status: 426 });
    const admitted = takeConnectToken(this.ctx.storage.kv, getConfig(this.env).AGENT_CONNECTS_PER_MINUTE);
    if (!admitted.ok) {
      this.logger().warn("agent connect refused", { reason: "connect rate limit" });
      return new Response(null, { status: 429, headers: { "Retry-After": String(admitted.retryAfterSeconds) } });
    }

    for (const old of this.openSockets()) this.closeSocket(old, closeCodes.superseded, "replaced by a newer connection");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [identity.agentId]);
    const attachment: Attachment = {
      connectionId: crypto.randomUUID(),
      ip: request.headers.get("CF-Connecting-IP"),
      helloed: false,
      lastSeenAt: Date.now(),
      pingedAt: null,
      heartbeat: null,
    };
    server.serializeAttachment(attachment);
    await this.scheduleAlarm();
    return new Response(null, { status: 101, webSocket: client });
  }

  // ---------------------------------------------------------------- hibernation handlers

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    return this.serial("agent", async () => {
      try {
        await this.handleFrame(ws, message);
      } catch (error) {
        this.logger().error("agent message could not be processed", describeError(error));
        this.send(ws, { type: "ERROR", code: "INTERNAL", message: "the message could not be processed now; send it again later" });
      }
    });
  }

  override webSocketClose(ws: WebSocket, code: number): Promise<void> {
    return this.serial("agent", async () => {
      this.remember(ws);
      this.closeSocket(ws, 1000, "closed");
      this.logger().info("agent disconnected", { code });
      await this.attempt(() => this.syncPresence());
      await this.scheduleAlarm();
    });
  }

  override webSocketError(ws: WebSocket): Promise<void> {
    return this.webSocketClose(ws, 1006);
  }

  /** The one alarm: missed heartbeats, log flushes, and retries of database and queue work. */
  override async alarm(): Promise<void> {
    await this.serial("agent", async () => {
      const identity = this.identity();
      if (!identity) return;
      try {
        const now = Date.now();
        for (const ws of this.openSockets()) {
          const attachment = attachmentOf(ws);
          const silentFor = now - attachment.lastSeenAt;
          if (silentFor >= MISSED_HEARTBEATS * HEARTBEAT_MS) {
            this.logger().info("agent missed heartbeats; closing its connection", { silent_seconds: Math.round(silentFor / 1000) });
            this.remember(ws);
            this.closeSocket(ws, closeCodes.heartbeatTimeout, "missed heartbeats");
          } else if (silentFor >= (MISSED_HEARTBEATS - 1) * HEARTBEAT_MS && attachment.pingedAt === null) {
            this.send(ws, { type: "PING" });
            ws.serializeAttachment({ ...attachment, pingedAt: now } satisfies Attachment);
          }
        }
        this.pingTails();
        await this.attempt(() => this.syncPresence());
        const flushDueAt = this.ctx.storage.kv.get<number>("flushDueAt");
        await this.drain(flushDueAt !== undefined && flushDueAt <= now);
        await this.clearIfRetired();
      } catch (error) {
        this.logger().error("agent alarm failed", describeError(error));
        this.ctx.storage.kv.put("retryAt", Date.now() + RETRY_MS);
      }
      await this.scheduleAlarm();
    });
  }

  // ---------------------------------------------------------------- protocol

  private async handleFrame(ws: WebSocket, frame: string | ArrayBuffer): Promise<void> {
    const identity = this.identity();
    if (!identity || identity.revoked) {
      this.closeSocket(ws, closeCodes.revoked, "agent revoked");
      return;
    }
    const attachment: Attachment = { ...attachmentOf(ws), lastSeenAt: Date.now(), pingedAt: null };
    ws.serializeAttachment(attachment);
    const parsed = parseAgentFrame(frame);
    if (!parsed.ok) {
      this.send(ws, { type: "ERROR", code: parsed.code, message: parsed.message });
      if (parsed.code === "VERSION_MISMATCH") this.closeSocket(ws, closeCodes.versionMismatch, "protocol version not supported");
      return;
    }
    const message = parsed.message;
    if (message.type === "HELLO") return this.onHello(ws, attachment, identity, message);
    if (!attachment.helloed) {
      this.send(ws, { type: "ERROR", code: "HELLO_REQUIRED", message: "send HELLO first" });
      return;
    }
    switch (message.type) {
      case "HEARTBEAT":
        this.send(ws, { type: "HEARTBEAT_ACK" });
        ws.serializeAttachment({ ...attachment, heartbeat: message } satisfies Attachment);
        return this.attempt(() => this.syncPresence());
      case "LOG":
        return this.onLog(ws, message);
      case "STATUS":
        return this.onStatus(ws, identity, message);
      case "ERROR":
        return this.onAgentError(identity, message);
      case "PONG":
        return;
    }
  }

  private async onHello(ws: WebSocket, attachment: Attachment, identity: Identity, hello: HelloMessage): Promise<void> {
    if (hello.agent_id !== identity.agentId) {
      this.send(ws, { type: "ERROR", code: "AUTH_FAILED", message: "agent_id does not match the token" });
      this.closeSocket(ws, closeCodes.authFailed, "agent_id does not match the token");
      return;
    }
    const previous = this.ctx.storage.kv.get<HelloRecord>("hello");
    const record: HelloRecord = { hello, ip: attachment.ip };
    ws.serializeAttachment({ ...attachment, helloed: true } satisfies Attachment);
    // Back within the disconnect grace with nothing new to say: the database still says connected, as it should.
    const unchanged = previous !== undefined && JSON.stringify(previous) === JSON.stringify(record) && this.session().dbState === "connected";
    if (!unchanged) {
      this.ctx.storage.kv.put("hello", record);
      this.updateSession({ dbState: "stale" });
    }
    this.send(ws, { type: "HELLO_ACK", status: "connected", agent_id: identity.agentId, heartbeat_interval: HEARTBEAT_INTERVAL_SECONDS });
    await this.deliverCommands(ws);
    if (previous && this.jobs.unfinished().length > 0) this.send(ws, { type: "STATUS_REQUEST" });
    this.logger().info("agent connected", { version: hello.version });
    await this.attempt(() => this.syncPresence());
    await this.scheduleAlarm();
  }

  private async onLog(ws: WebSocket, message: LogMessage): Promise<void> {
    const job = this.jobs.get(message.job_id);
    if (!job) {
      this.send(ws, { type: "ERROR", code: "UNKNOWN_JOB", message: "this agent has no job with that id", job_id: message.job_id });
      return;
    }
    if (job.kind === "deploy") return this.onDeployLog(ws, job.jobId, message);
    const masker = await this.masker();
    const lines = message.lines.map((l) => ({
      seq: l.seq,
      stream: l.stream,
      timestamp: CANONICAL_TIMESTAMP.test(l.timestamp) ? l.timestamp : new Date(l.timestamp).toISOString(),
      line: cleanLine(masker.mask(l.data)),
    }));
    const acked = this.logs.ackedSeq(job.jobId);
    const { fresh, refused } = this.logs.add(job.jobId, lines, this.logLimits(), masker.generation);
    if (fresh.length > 0) this.linesArrived?.();
    this.publish(job.jobId, fresh);
    // Lines stored before (a resend after reconnect) are acknowledged at once so the agent can drop them.
    if (acked > 0 && lines.some((l) => l.seq <= acked)) this.send(ws, { type: "LOG_ACK", job_id: job.jobId, seq: acked });
    if (refused > 0) this.onLogLimit(ws, job.jobId, job.finished);
    if (fresh.length > 0 && this.ctx.storage.kv.get("flushDueAt") === undefined) {
      this.ctx.storage.kv.put("flushDueAt", Date.now() + FLUSH_DELAY_MS);
      await this.scheduleAlarm();
    }
    // Inserts run beside the next frames; only a backlog (a slow database) makes the agent's frames wait.
    if (this.logs.pendingCount(job.jobId) >= MAX_BUFFERED_LINES || this.logs.pendingBytes(job.jobId) >= MAX_BUFFERED_BYTES) await this.drain(false);
    else if (this.insertDue(job.jobId) || refused > 0) void this.drain(refused > 0);
  }

  /** A full insert's worth of lines is buffered for the job. */
  private insertDue(jobId: string): boolean {
    const waiting = this.logs.untaken(jobId);
    return waiting.lines >= FLUSH_LINES || waiting.bytes >= MAX_INSERT_CHARS;
  }

  /**
   * The job's log reached MAX_LOG_LINES_PER_JOB or MAX_LOG_BYTES_PER_JOB: the agent is told to drop the rest, and the
   * job fails (once) with the reason, which retires its agent (TERMINATE, then the token is refused).
   */
  private onLogLimit(ws: WebSocket, jobId: string, alreadyFinished: boolean): void {
    const { maxLines, maxBytes } = this.logLimits();
    const message = `the job's log reached its limit of ${maxLines} lines or ${maxBytes} bytes (MAX_LOG_LINES_PER_JOB, MAX_LOG_BYTES_PER_JOB); the rest is not stored`;
    this.send(ws, { type: "ERROR", code: "LOG_LIMIT_EXCEEDED", message, job_id: jobId });
    if (alreadyFinished) return;
    this.logger().warn("a build job's log reached its limit", { job_id: jobId, max_lines: maxLines, max_bytes: maxBytes });
    this.ctx.storage.transactionSync(() => {
      this.outbox.addReport(jobId, { kind: "error", code: "LOG_LIMIT_EXCEEDED", message });
      this.jobs.markFinished(jobId);
    });
  }

  /**
   * A deploy's log (docker compose output) is not stored line by line: the Durable Object keeps its last
   * DEPLOY_TAIL_LINES lines (masked), which travel with a failure report so the environment says why it failed.
   */
  private async onDeployLog(ws: WebSocket, jobId: string, message: LogMessage): Promise<void> {
    const { mask } = await this.masker();
    const key = `deployTail:${jobId}`;
    const tail = this.ctx.storage.kv.get<{ seq: number; line: string }[]>(key) ?? [];
    const seen = new Set(tail.map((l) => l.seq));
    for (const l of message.lines) if (!seen.has(l.seq)) tail.push({ seq: l.seq, line: cleanLine(mask(l.data)) });
    tail.sort((a, b) => a.seq - b.seq);
    this.ctx.storage.kv.put(key, tail.slice(-DEPLOY_TAIL_LINES));
    const highest = Math.max(...message.lines.map((l) => l.seq));
    this.send(ws, { type: "LOG_ACK", job_id: jobId, seq: highest });
  }

  private async onStatus(ws: WebSocket, identity: Identity, message: StatusMessage): Promise<void> {
    const job = this.jobs.get(message.job_id);
    if (!job) {
      this.send(ws, { type: "ERROR", code: "UNKNOWN_JOB", message: "this agent has no job with that id", job_id: message.job_id });
      return;
    }
    const tailMask = job.kind === "deploy" && message.state === "failed" ? await this.currentMask() : undefined;
    this.ctx.storage.transactionSync(() => {
      this.commands.acknowledgeJob(job.jobId);
      if (message.state === "terminated") this.commands.acknowledgeTerminate();
      if (job.kind === "build") {
        if (message.state !== "pending") {
          this.outbox.addReport(job.jobId, {
            kind: "status",
            state: message.state,
            exitCode: message.exit_code ?? null,
            durationSeconds: message.duration_seconds ?? null,
            artifactUrl: message.artifact_url ?? null,
          });
        }
      } else {
        this.surfaceDeployReport(identity, job.jobId, job.lastReport, message.state, message.services ?? [], tailMask);
      }
    });
    await this.drain(true);
  }

  private async onAgentError(identity: Identity, message: AgentErrorMessage): Promise<void> {
    // The agent's message text may quote anything it saw: it is stored masked, and never logged.
    this.logger().warn("agent reported an error", { code: message.code, job_id: message.job_id ?? null });
    const job = message.job_id ? this.jobs.get(message.job_id) : undefined;
    if (!job) return;
    const mask = await this.currentMask();
    if (job.kind === "build") {
      this.outbox.addReport(job.jobId, { kind: "error", code: message.code, message: mask(message.message) });
    } else {
      this.surfaceDeployReport(identity, job.jobId, job.lastReport, "failed", [], mask);
    }
    await this.drain(true);
  }

  /** A preview agent's report on a DEPLOY becomes one queue event per distinct (state, services). */
  private surfaceDeployReport(
    identity: Identity,
    jobId: string,
    lastReport: string | null,
    state: StatusMessage["state"],
    services: NonNullable<StatusMessage["services"]>,
    tailMask?: (text: string) => string,
  ): void {
    const key = JSON.stringify([state, services]);
    if (key === lastReport || !identity.environmentId) return;
    this.jobs.setLastReport(jobId, key);
    if (state === "completed" || state === "failed" || state === "terminated") this.jobs.markFinished(jobId);
    // Masked again with the project's current secrets: one created since a line arrived is masked too.
    const tail = state === "failed" ? (this.ctx.storage.kv.get<{ line: string }[]>(`deployTail:${jobId}`) ?? []) : [];
    const lastLines = tail.map((l) => (tailMask ? tailMask(l.line) : l.line));
    this.outbox.addEvent({ type: "environment.deploy_reported", environment_id: identity.environmentId, job_id: jobId, state, services, last_lines: lastLines });
  }

  /** Sends the commands not yet sent on this connection; one delivery at a time, so none goes out twice. */
  private deliverCommands(ws: WebSocket): Promise<void> {
    return this.serial("delivery", async () => {
      const { connectionId } = attachmentOf(ws);
      for (const { id, command } of await this.commands.unsentOn(connectionId)) {
        if (!this.send(ws, command)) return;
        this.commands.markSent(id, connectionId);
      }
    });
  }

  // ---------------------------------------------------------------- logs, reports, events

  /**
   * Writes what is owed: log lines (full batches of FLUSH_LINES, or everything when `force`), then build reports in
   * arrival order (after their job's lines), then queue events. One run at a time; a failure is retried by the alarm.
   */
  private drain(force: boolean): Promise<void> {
    this.drainForce ||= force;
    if (this.draining) {
      this.drainAgain = true;
      return this.draining;
    }
    this.draining = (async () => {
      try {
        do {
          this.drainAgain = false;
          const forceNow = this.drainForce;
          this.drainForce = false;
          await this.flushLogs(forceNow);
          await this.applyReports();
          await this.sendEvents();
        } while (this.drainAgain);
        this.ctx.storage.kv.delete("retryAt");
      } catch (error) {
        this.logger().warn("agent gateway work failed; will retry", describeError(error));
        this.ctx.storage.kv.put("retryAt", Date.now() + RETRY_MS);
      } finally {
        this.draining = null;
      }
      await this.scheduleAlarm();
    })();
    return this.draining;
  }

  private async flushLogs(force: boolean): Promise<void> {
    for (const jobId of this.logs.jobsWithPending()) {
      const inFlight = new Set<Promise<void>>();
      let failure: { error: unknown } | undefined;
      for (;;) {
        while (!failure && inFlight.size < INSERTS_IN_FLIGHT && this.logs.untaken(jobId).lines > 0 && (force || this.insertDue(jobId))) {
          const insert: Promise<void> = this.insertBatch(jobId)
            .catch((error: unknown) => {
              failure ??= { error };
            })
            .finally(() => inFlight.delete(insert));
          inFlight.add(insert);
        }
        if (inFlight.size === 0) break;
        // Until an insert ends or more lines arrive (onLog), either of which may let another insert start.
        await Promise.race([...inFlight, new Promise<void>((resolve) => (this.linesArrived = resolve))]);
        this.linesArrived = null;
      }
      if (failure) throw failure.error;
    }
    if (this.logs.totalPending() === 0) this.ctx.storage.kv.delete("flushDueAt");
    else if (!force) this.ctx.storage.kv.put("flushDueAt", Date.now() + FLUSH_DELAY_MS);
  }

  /** One insert of a job's next buffered lines (masked again first if the project's secrets changed). */
  private async insertBatch(jobId: string): Promise<void> {
    let batch: JobLogLine[] = [];
    try {
      for (let attempt = 1; ; attempt++) {
        const masker = await this.masker();
        batch = this.logs.take(jobId, FLUSH_LINES, MAX_INSERT_CHARS, masker);
        if (batch.length === 0) return;
        if ((await insertLogLines(this.db(), jobId, batch, masker)).inserted) {
          this.assignmentMasker?.confirm(masker);
          break;
        }
        // The project's secrets changed since the masker was loaded: load them, mask again, insert again.
        this.logs.release(jobId, batch.map((l) => l.seq));
        batch = [];
        this.assignmentMasker?.invalidate();
        if (attempt === MASK_RETRIES) throw new Error("the project's secrets keep changing; the log insert will be retried");
      }
    } catch (error) {
      this.logs.release(jobId, batch.map((l) => l.seq));
      if (databaseErrorOf(error)?.code !== "23503") throw error;
      // The job row is gone (deleted with its run): these lines can never be stored.
      this.logger().warn("dropping log lines of a build job that no longer exists", { job_id: jobId });
      this.ackLogs(jobId, this.logs.dropJob(jobId));
      return;
    }
    const acked = this.logs.markStored(jobId, batch.map((l) => l.seq));
    const stats = this.stats();
    this.ctx.storage.kv.put("stats", { inserts: stats.inserts + 1, lines: stats.lines + batch.length });
    this.ackLogs(jobId, acked);
  }

  private async applyReports(): Promise<void> {
    const identity = this.identity();
    if (!identity) return;
    for (const { id, jobId, report } of this.outbox.reports()) {
      if (this.logs.pendingCount(jobId) > 0) await this.flushLogs(true);
      const result = await applyBuildReport(this.db(), identity.agentId, jobId, report);
      const final = report.kind === "error" || report.state === "completed" || report.state === "failed" || report.state === "terminated";
      this.ctx.storage.transactionSync(() => {
        if (result.finished) this.outbox.addEvent({ type: "build_job.finished", job_id: jobId, status: result.finished });
        if (final) this.jobs.markFinished(jobId);
        this.outbox.deleteReport(id);
      });
      if (final) this.endTails(jobId);
    }
  }

  private async sendEvents(): Promise<void> {
    for (const { id, event } of this.outbox.events()) {
      await this.env.JOBS.send(event);
      this.outbox.deleteEvent(id);
    }
  }

  private ackLogs(jobId: string, seq: number): void {
    const ws = this.helloedSocket();
    if (ws && seq > 0) this.send(ws, { type: "LOG_ACK", job_id: jobId, seq });
  }

  /** The masker of this agent's assignment (a builder's job, a preview's environment): see AssignmentMasker. */
  private masker(): Promise<MaskerInUse> {
    if (!this.assignmentMasker) {
      const identity = this.identity();
      const owner: SecretsOwner | null = identity?.buildJobId
        ? { buildJobId: identity.buildJobId }
        : identity?.environmentId
          ? { environmentId: identity.environmentId }
          : null;
      this.assignmentMasker = new AssignmentMasker(async () =>
        owner ? loadProjectMasker(this.db(), await this.getKeyring(), owner, this.logger()) : { projectId: null, version: null, mask: (text) => text },
      );
    }
    return this.assignmentMasker.get();
  }

  /** For text that is not inserted with a secrets check (errors, deploy output): a masker confirmed just now. */
  private async currentMask(): Promise<(text: string) => string> {
    this.assignmentMasker?.invalidate();
    return (await this.masker()).mask;
  }

  private logLimits(): LogLimits {
    const config = getConfig(this.env);
    return { maxLines: config.MAX_LOG_LINES_PER_JOB, maxBytes: config.MAX_LOG_BYTES_PER_JOB };
  }

  private publish(jobId: string, lines: JobLogLine[]): void {
    const subscribers = this.tails.get(jobId);
    if (!subscribers || lines.length === 0) return;
    const chunk = encodeEvents(lines.map((line) => ({ type: "line", ...line })));
    for (const controller of subscribers) {
      try {
        if ((controller.desiredSize ?? 0) < -MAX_TAIL_BACKLOG) throw new Error("live tail fell behind");
        controller.enqueue(chunk);
      } catch (error) {
        subscribers.delete(controller);
        try {
          controller.error(error);
        } catch {
          // already closed by its reader
        }
      }
    }
  }

  /**
   * A reader that went away is only noticed when something is written to its stream: the alarm writes a ping to
   * every live tail so an abandoned one is dropped even while its job is quiet.
   */
  private pingTails(): void {
    for (const [jobId, subscribers] of this.tails) {
      for (const controller of subscribers) {
        try {
          controller.enqueue(encodeEvents([{ type: "ping" }]));
        } catch {
          subscribers.delete(controller);
        }
      }
      if (subscribers.size === 0) this.tails.delete(jobId);
    }
  }

  private endTails(jobId: string): void {
    const subscribers = this.tails.get(jobId);
    this.tails.delete(jobId);
    for (const controller of subscribers ?? []) {
      try {
        controller.enqueue(encodeEvents([{ type: "end" }]));
        controller.close();
      } catch {
        // the reader went away
      }
    }
  }

  // ---------------------------------------------------------------- presence

  /**
   * Brings `agent_connections` (and a preview's environment heartbeat) in line with the socket: connected after
   * HELLO, disconnected when the last socket is gone, and `last_seen_at` refreshed at most once a minute.
   */
  private async syncPresence(): Promise<void> {
    const identity = this.identity();
    if (!identity) return;
    const session = this.session();
    const now = Date.now();
    const current = this.helloedSocket();
    const connected = !identity.revoked && current !== undefined;
    const ref: AgentRef = { agentId: identity.agentId, environmentId: identity.environmentId };
    const lastSeen = this.lastSeen();
    const heartbeat = (current && attachmentOf(current).heartbeat) ?? session.heartbeat;
    if (connected && session.dbState !== "connected") {
      const record = this.ctx.storage.kv.get<HelloRecord>("hello");
      if (!record) return;
      this.updateSession({ lastDbWriteAt: now, lastSeenAt: lastSeen, heartbeat });
      await recordConnected(this.db(), ref, record.hello, record.ip, new Date(now));
      this.updateSession({ dbState: "connected" });
    } else if (!connected && session.dbState !== "disconnected") {
      if (this.inDisconnectGrace(identity, session, now)) return;
      await recordDisconnected(this.db(), ref, lastSeen ? new Date(lastSeen) : null, new Date(now));
      this.updateSession({ dbState: "disconnected", lastDbWriteAt: now });
    } else if (connected && now - session.lastDbWriteAt >= SEEN_WRITE_INTERVAL_MS) {
      // The only storage write of a steady heartbeat, once a minute with the database's.
      this.updateSession({ lastDbWriteAt: now, lastSeenAt: lastSeen, heartbeat });
      await recordSeen(this.db(), ref, new Date(lastSeen || now));
    }
  }

  /**
   * Gone, but heard from less than DISCONNECT_GRACE_MS ago while the database says connected: the disconnected
   * write waits, and a reconnect within the grace makes it unnecessary. A revoked agent is written at once.
   */
  private inDisconnectGrace(identity: Identity, session: Session, now: number): boolean {
    return !identity.revoked && session.dbState === "connected" && now < this.lastSeen() + DISCONNECT_GRACE_MS;
  }

  /**
   * A revoked agent with nothing left to store or deliver (lines, reports, events, its disconnected write) never
   * comes back: its storage is deleted, identity included, so a later connect is refused as an unknown agent.
   */
  private async clearIfRetired(): Promise<void> {
    const identity = this.identity();
    if (!identity?.revoked || this.logs.totalPending() > 0 || !this.outbox.isEmpty() || this.session().dbState !== "disconnected") return;
    this.logger().info("deleting the retired agent's storage");
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
  }

  /** Runs database work whose failure must not reach the agent: logged, and retried by the alarm. */
  private async attempt(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.logger().warn("agent presence update failed; will retry", describeError(error));
      this.ctx.storage.kv.put("retryAt", Date.now() + RETRY_MS);
      await this.scheduleAlarm();
    }
  }

  /** Sets the alarm to the earliest thing due: a log flush, a retry, a heartbeat check, a presence write owed. */
  private async scheduleAlarm(): Promise<void> {
    const identity = this.identity();
    if (!identity) return;
    const kv = this.ctx.storage.kv;
    const session = this.session();
    const now = Date.now();
    const due: number[] = [];
    const flushDueAt = kv.get<number>("flushDueAt");
    if (flushDueAt !== undefined) due.push(flushDueAt);
    if (!this.outbox.isEmpty()) due.push(now + RETRY_MS);
    for (const ws of this.openSockets()) {
      const { lastSeenAt, pingedAt } = attachmentOf(ws);
      due.push(lastSeenAt + HEARTBEAT_MS * (pingedAt === null ? MISSED_HEARTBEATS - 1 : MISSED_HEARTBEATS));
    }
    const connected = !identity.revoked && this.helloedSocket() !== undefined;
    if (session.dbState !== (connected ? "connected" : "disconnected")) {
      due.push(this.inDisconnectGrace(identity, session, now) ? this.lastSeen() + DISCONNECT_GRACE_MS : now);
    }
    if (due.length === 0) return;
    const retryAt = kv.get<number>("retryAt");
    const next = Math.max(Math.min(...due), retryAt ?? 0);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  // ---------------------------------------------------------------- helpers

  /**
   * Runs `work` after everything queued before it on the same queue: "agent" (its messages, the alarm, revocation)
   * happen one at a time and in order; "commands" keeps commands in call order; "delivery" sends each once.
   */
  private serial<T>(queue: "agent" | "commands" | "delivery", work: () => Promise<T>): Promise<T> {
    const next = (this.chains.get(queue) ?? Promise.resolve()).then(work, work);
    this.chains.set(queue, next.catch(() => undefined));
    return next;
  }

  private identity(): Identity | undefined {
    return this.ctx.storage.kv.get<Identity>("identity");
  }

  private session(): Session {
    return this.ctx.storage.kv.get<Session>("session") ?? { dbState: "disconnected", lastDbWriteAt: 0, lastSeenAt: 0, heartbeat: null };
  }

  /** When the agent was last heard from: the live socket's attachment, or what was stored when the last one closed. */
  private lastSeen(): number {
    const socket = this.currentAttachment();
    return Math.max(socket?.lastSeenAt ?? 0, this.session().lastSeenAt);
  }

  private currentAttachment(): Attachment | undefined {
    const ws = this.helloedSocket() ?? this.openSockets()[0];
    return ws ? attachmentOf(ws) : undefined;
  }

  /** Stores a closing socket's liveness, which would otherwise go with it. */
  private remember(ws: WebSocket): void {
    const attachment = attachmentOf(ws);
    const session = this.session();
    if (attachment.helloed && attachment.lastSeenAt > session.lastSeenAt) {
      this.updateSession({ lastSeenAt: attachment.lastSeenAt, heartbeat: attachment.heartbeat ?? session.heartbeat });
    }
  }

  private updateSession(patch: Partial<Session>): void {
    this.ctx.storage.kv.put<Session>("session", { ...this.session(), ...patch });
  }

  private stats(): { inserts: number; lines: number } {
    return this.ctx.storage.kv.get<{ inserts: number; lines: number }>("stats") ?? { inserts: 0, lines: 0 };
  }

  private openSockets(): WebSocket[] {
    return this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN);
  }

  private helloedSocket(): WebSocket | undefined {
    return this.openSockets().find((ws) => attachmentOf(ws).helloed);
  }

  private send(ws: WebSocket, message: CoreMessage): boolean {
    try {
      ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  private closeSocket(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  private db(): Db {
    return getDb(getConfig(this.env).DATABASE_URL);
  }

  private getKeyring(): Promise<Keyring> {
    if (!this.keyring) {
      const keyring = keyringFromConfig(getConfig(this.env));
      this.keyring = keyring;
      keyring.catch(() => {
        if (this.keyring === keyring) this.keyring = null;
      });
    }
    return this.keyring;
  }

  /** Associated data for sealed commands: a command copied to another agent's storage does not open. */
  private commandAad(): string {
    return `agent_command:${this.ctx.id.toString()}`;
  }

  private logger(): Logger {
    const level = ["debug", "info", "warn", "error"].includes(this.env.LOG_LEVEL) ? (this.env.LOG_LEVEL as LogLevel) : "info";
    return new Logger(level, { component: "agent_gateway", agent_id: this.identity()?.agentId ?? null });
  }
}

/** What the agent sends (toISOString): kept as it is; any other valid form is rewritten to it (a Date round trip costs more). */
const CANONICAL_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * What Postgres can store: no NUL (text refuses it), no lone UTF-16 surrogate (not Unicode), and at most MAX_LINE_CHARS.
 * Applied after masking so a secret is never cut in half before it is recognised.
 */
function attachmentOf(ws: WebSocket): Attachment {
  return ws.deserializeAttachment() as Attachment;
}

function cleanLine(line: string): string {
  const text = line.replaceAll("\u0000", "").replace(LONE_SURROGATE, "\ufffd");
  return text.length > MAX_LINE_CHARS ? `${text.slice(0, MAX_LINE_CHARS)} [truncated]` : text;
}

/**
 * Error fields safe to log: names, Postgres's code and message, never query parameters (drizzle puts them, log lines
 * included, in its own message, so only the cause is described).
 */
function describeError(error: unknown): Record<string, unknown> {
  const database = databaseErrorOf(error);
  if (database) return { error: { name: "NeonDbError", code: database.code ?? null, message: database.message } };
  if (!(error instanceof Error)) return { error: { name: typeof error } };
  if (error.name === "DrizzleQueryError") {
    const cause = error.cause instanceof Error ? { name: error.cause.name, message: error.cause.message.slice(0, 200) } : null;
    return { error: { name: error.name, cause } };
  }
  return { error: { name: error.name, message: error.message.slice(0, 200) } };
}
