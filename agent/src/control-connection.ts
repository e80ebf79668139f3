// The agent's control connection to Core, protocol v1 (docs/agent-protocol.md): dial with the token in the
// Authorization header, HELLO, heartbeats, jittered exponential backoff, the close codes, every job's
// unacknowledged log lines kept and resent, STATUS and ERROR reports, and commands validated with the protocol's
// schemas. Shared by the real agent (agent/src/agent.ts) and the simulator (scripts/agent-sim/agent.ts); no Node
// APIs, because the simulator also runs inside workerd tests (with `openSocket`).
import {
  MAX_LINE_CHARS,
  closeCodes,
  coreMessage,
  type BuildCommand,
  type CoreMessage,
  type DeployCommand,
  type HeartbeatMessage,
  type HelloMessage,
  type JobState,
  type LogLine,
  type StatusMessage,
} from "../../src/agents/protocol.ts";

export type SystemInfo = HelloMessage["system_info"];
/** What a heartbeat says about the machine. */
export type MachineLoad = Omit<HeartbeatMessage, "type" | "timestamp">;
export type JobKind = "build" | "deploy";
export type StatusFields = Partial<Pick<StatusMessage, "exit_code" | "duration_seconds" | "artifact_url" | "services">>;

/** One BUILD or DEPLOY as the connection keeps it: numbered log lines and the reports Core must get. */
export interface JobChannel {
  readonly id: string;
  readonly kind: JobKind;
  /** The last state reported, null before the first report. */
  readonly state: JobState | null;
  /** The last STATUS, as sent (and sent again after a reconnect). */
  readonly lastStatus: StatusMessage | null;
  /** Completed, failed or terminated. */
  readonly finished: boolean;
  /** One line of output (longer lines are split, embedded newlines make several lines). */
  log(stream: "stdout" | "stderr", data: string): void;
  /**
   * Reports the job's state: sent now, again after every reconnect and when Core asks. The job's lines logged so far
   * are sent first (Core stores a job's lines before it marks the job finished).
   */
  report(state: JobState, fields?: StatusFields): void;
  /**
   * An ERROR about the job (a build job fails with this message), sent before the job's next STATUS and again with it
   * after a reconnect: a frame sent as the socket dies is lost, and Core ignores a replayed ERROR.
   */
  error(code: string, message: string, context?: Record<string, unknown>): void;
}

export interface JobHandlers {
  /** A BUILD or DEPLOY for a job the agent does not have yet (a duplicate is answered with the job's last STATUS). */
  onJob(job: JobChannel, command: BuildCommand | DeployCommand): void;
  /** TERMINATE: the handler reports and stops the jobs, cleans up and calls `stop()`. */
  onTerminate(reason: string, gracePeriodSeconds: number): void;
}

export interface ControlConnectionOptions {
  /** Core's base URL, e.g. https://stagely.example.com (the agent dials <coreUrl>/v1/agent/connect). */
  coreUrl: string;
  token: string;
  /** Defaults to the id inside the token. */
  agentId?: string;
  /** The agent's semantic version; its major is the protocol major. */
  version: string;
  /** HELLO's system_info, asked for before every connection. */
  systemInfo(): SystemInfo | Promise<SystemInfo>;
  /** A heartbeat's view of the machine, asked for at every heartbeat. */
  load(): MachineLoad;
  handlers: JobHandlers;
  /** Overrides the interval Core announces in HELLO_ACK. */
  heartbeatIntervalSeconds?: number;
  /** Stop after this long without Core (default 15 minutes, as the protocol says). */
  giveUpAfterSeconds?: number;
  log: (line: string) => void;
  /** Every valid message from Core, after the connection handled it (tests and benchmarks). */
  onMessage?: (message: CoreMessage) => void;
  /**
   * Opens the socket (the URL is <coreUrl>/v1/agent/connect, the headers carry the token). By default the global
   * WebSocket with headers (Node 22+); workerd tests pass one that goes through the Worker's fetch.
   */
  openSocket?: (url: string, headers: Record<string, string>) => Promise<WebSocket>;
}

/** Why the connection ended for good. */
export type ConnectionEnd =
  | { reason: "stopped" }
  /** Core closed with a final code: 4001 (agent id), 4002 (protocol version), 4003 (revoked). */
  | { reason: "refused"; code: number }
  | { reason: "gave_up" };

export interface ControlConnection {
  readonly agentId: string;
  /** Resolves once, when the connection has ended for good. */
  readonly done: Promise<ConnectionEnd>;
  /** Closes the connection for good (1000) and resolves `done`. */
  stop(): Promise<void>;
  jobs(): JobChannel[];
  /**
   * A job from before a restart, with its last state: a duplicate command is answered with it, and the agent can still
   * report on it. Its lines are gone with the old process; it takes no new ones (their numbers would start over).
   */
  restoreJob(job: { id: string; kind: JobKind; lastStatus: StatusMessage | null }): JobChannel;
  /** Resolves when the unacknowledged lines are below the cap again: producers wait on it before logging more. */
  room(): Promise<void>;
  /** Waits until Core acknowledged every line (true) or `timeoutMs` passed (false). */
  settle(timeoutMs: number): Promise<boolean>;
  stats(): { connects: number; linesSent: number; linesAcked: number; unacked: number };
}

const LOG_BATCH_LINES = 200;
const LOG_BATCH_MS = 50;
/** Frames stay well under Core's 1 MiB limit. */
const MAX_FRAME_ESTIMATE = 512 * 1024;
const RESEND_AFTER_MS = 10_000;
const MAX_UNACKED_LINES = 20_000;
const MAX_SOCKET_BUFFER = 8 * 2 ** 20;
const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
const FINAL_CLOSE_CODES = new Set<number>([closeCodes.authFailed, closeCodes.versionMismatch, closeCodes.revoked]);
const COMMAND_TYPES = new Set(["BUILD", "DEPLOY", "TERMINATE"]);
const KNOWN_TYPES = new Set([...COMMAND_TYPES, "HELLO_ACK", "HEARTBEAT_ACK", "LOG_ACK", "PING", "STATUS_REQUEST", "ERROR"]);

type NodeWebSocket = WebSocket & { bufferedAmount?: number };
/** Node's WebSocket (undici) takes headers; the Workers types in this project do not know that. */
const WebSocketWithHeaders = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => NodeWebSocket;
const openWithHeaders = async (url: string, headers: Record<string, string>): Promise<WebSocket> => new WebSocketWithHeaders(url, { headers });

interface UnackedLine {
  line: LogLine;
  sentAt: number;
}

interface Job extends JobChannel {
  nextSeq: number;
  lastStatus: StatusMessage | null;
  /** In seq order, kept until a LOG_ACK covers them; `sentAt` 0 = not sent on the current connection. */
  unacked: UnackedLine[];
  /** Lines waiting for the next LOG frame: the same entries as the tail of `unacked`, so sending one marks it there. */
  batch: UnackedLine[];
  /** Its ERRORs, sent again with its STATUS. */
  errors: Record<string, unknown>[];
}

/** The agent id inside a token `stg_agt_<id>_<secret>`. */
export function agentIdOfToken(token: string): string {
  const match = /^stg_agt_([0-9a-z]{16})_[0-9a-f]{64}$/.exec(token);
  if (!match) throw new Error("not an agent token (stg_agt_<id>_<secret>)");
  return `agt_${match[1]}`;
}

/** Splits `data` into protocol lines: one per embedded newline, none longer than MAX_LINE_CHARS. */
function protocolLines(data: string): string[] {
  const lines: string[] = [];
  for (const raw of data.split("\n")) {
    let line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    while (line.length > MAX_LINE_CHARS) {
      // Never cut a surrogate pair in half.
      const cut = /[\ud800-\udbff]/.test(line[MAX_LINE_CHARS - 1]!) ? MAX_LINE_CHARS - 1 : MAX_LINE_CHARS;
      lines.push(line.slice(0, cut));
      line = line.slice(cut);
    }
    lines.push(line);
  }
  return lines;
}

/** A generous estimate of a line's size in a JSON frame. */
function frameCost(line: LogLine): number {
  return (/^[\x20-\x7e]*$/.test(line.data) ? line.data.length * 2 : line.data.length * 6) + 100;
}

export function openControlConnection(options: ControlConnectionOptions): ControlConnection {
  const agentId = options.agentId ?? agentIdOfToken(options.token);
  const say = options.log;
  const giveUpMs = (options.giveUpAfterSeconds ?? 15 * 60) * 1000;
  const url = `${options.coreUrl.replace(/^http/, "ws").replace(/\/+$/, "")}/v1/agent/connect`;

  const jobs = new Map<string, Job>();
  const stats = { connects: 0, linesSent: 0, linesAcked: 0 };
  let ws: NodeWebSocket | null = null;
  let ready = false;
  let ended: ConnectionEnd | null = null;
  let failures = 0;
  let lastContact = Date.now();
  let heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let resolveDone!: (end: ConnectionEnd) => void;
  const done = new Promise<ConnectionEnd>((resolve) => (resolveDone = resolve));
  const waiters = new Set<() => void>();

  const send = (message: Record<string, unknown>): boolean => {
    if (!ws || !ready || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  };

  // ---- connection

  async function connect(): Promise<void> {
    if (ended) return;
    let systemInfo: SystemInfo;
    let socket: NodeWebSocket;
    try {
      systemInfo = await options.systemInfo();
      socket = await (options.openSocket ?? openWithHeaders)(url, { Authorization: `Bearer ${options.token}` });
    } catch (error) {
      say(`could not connect: ${error instanceof Error ? error.message : String(error)}`);
      return scheduleReconnect(1006);
    }
    if (ended) {
      socket.close(1000, "agent stopping");
      return;
    }
    ws = socket;
    const hello = () => socket.send(JSON.stringify({ type: "HELLO", version: options.version, agent_id: agentId, system_info: systemInfo }));
    if (socket.readyState === WebSocket.OPEN) hello();
    else socket.addEventListener("open", hello);
    socket.addEventListener("message", (event) => {
      if (ws !== socket) return;
      lastContact = Date.now();
      const message = parse(String(event.data));
      if (!message) return;
      handle(message);
      options.onMessage?.(message);
    });
    socket.addEventListener("close", (event) => {
      if (ws !== socket) return;
      ws = null;
      ready = false;
      clearInterval(heartbeatTimer);
      for (const job of jobs.values()) for (const entry of job.unacked) entry.sentAt = 0;
      if (ended) return;
      if (FINAL_CLOSE_CODES.has(event.code)) {
        say(`Core closed the connection for good (${event.code} ${event.reason}); stopping`);
        return end({ reason: "refused", code: event.code });
      }
      scheduleReconnect(event.code);
    });
    socket.addEventListener("error", () => {
      // A close event follows; a refused upgrade (401) also lands there.
    });
  }

  function scheduleReconnect(code: number): void {
    if (Date.now() - lastContact > giveUpMs) {
      say(`no contact with Core for ${Math.round(giveUpMs / 60_000)} minutes: giving up`);
      return end({ reason: "gave_up" });
    }
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** failures);
    failures++;
    const delay = Math.round(cap * (0.5 + Math.random() / 2));
    say(`connection closed (${code}); reconnecting in ${(delay / 1000).toFixed(1)} s`);
    reconnectTimer = setTimeout(() => void connect(), delay);
  }

  /** A frame from Core, validated; commands that do not validate are refused with an ERROR naming the job. */
  function parse(frame: string): CoreMessage | null {
    let value: unknown;
    try {
      value = JSON.parse(frame);
    } catch {
      say("ignored a frame from Core that is not JSON");
      return null;
    }
    const type = (value as { type?: unknown } | null)?.type;
    if (typeof type !== "string" || !KNOWN_TYPES.has(type)) {
      // A newer minor version may add message types: ignored.
      say(`ignored a message of unknown type ${JSON.stringify(String(type).slice(0, 32))}`);
      return null;
    }
    const result = coreMessage.safeParse(value);
    if (result.success) return result.data;
    const problems = result.error.issues.slice(0, 5).map((issue) => `${issue.path.join(".") || "(message)"}: ${issue.message}`).join("; ");
    say(`refused an invalid ${type} from Core: ${problems}`);
    const jobId = (value as { job_id?: unknown }).job_id;
    if (COMMAND_TYPES.has(type) && typeof jobId === "string") {
      send({ type: "ERROR", job_id: jobId, code: "BAD_COMMAND", message: `invalid ${type}: ${problems}` });
    }
    return null;
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
          sendReports(job);
        }
        return;
      }
      case "LOG_ACK": {
        const job = jobs.get(message.job_id);
        if (!job) return;
        const before = job.unacked.length;
        let covered = 0;
        while (covered < job.unacked.length && job.unacked[covered]!.line.seq <= message.seq) covered++;
        job.unacked.splice(0, covered);
        stats.linesAcked += before - job.unacked.length;
        wakeWaiters();
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
        const job = createJob(message.job_id, message.type === "BUILD" ? "build" : "deploy", 1, null);
        options.handlers.onJob(job, message);
        return;
      }
      case "TERMINATE":
        options.handlers.onTerminate(message.reason, message.grace_period_seconds);
        return;
      case "PING":
        send({ type: "PONG", timestamp: new Date().toISOString() });
        return;
      case "STATUS_REQUEST":
        heartbeat();
        for (const job of jobs.values()) sendReports(job);
        return;
      case "ERROR": {
        say(`Core reported ${message.code}: ${message.message}`);
        const job = message.job_id ? jobs.get(message.job_id) : undefined;
        if (message.code === "UNKNOWN_JOB" && job) {
          // Core will never take these lines: stop resending them.
          job.unacked = [];
          wakeWaiters();
        }
        return;
      }
      case "HEARTBEAT_ACK":
        return;
    }
  }

  function heartbeat(): void {
    send({ type: "HEARTBEAT", timestamp: new Date().toISOString(), ...options.load() });
  }

  // ---- jobs

  function createJob(id: string, kind: JobKind, nextSeq: number, lastStatus: StatusMessage | null): Job {
    const job: Job = {
      id,
      kind,
      nextSeq,
      unacked: [],
      batch: [],
      lastStatus,
      errors: [],
      get state() {
        return job.lastStatus?.state ?? null;
      },
      get finished() {
        const state = job.lastStatus?.state;
        return state === "completed" || state === "failed" || state === "terminated";
      },
      log(stream, data) {
        for (const text of protocolLines(data)) {
          const line: LogLine = { seq: job.nextSeq++, stream, timestamp: new Date().toISOString(), data: text };
          const entry: UnackedLine = { line, sentAt: 0 };
          job.unacked.push(entry);
          job.batch.push(entry);
          if (job.batch.length >= LOG_BATCH_LINES) flushBatch(job);
        }
      },
      report(state, fields = {}) {
        flushBatch(job);
        job.lastStatus = { type: "STATUS", job_id: id, state, ...fields };
        send(job.lastStatus);
      },
      error(code, message, context) {
        flushBatch(job);
        const error = { type: "ERROR", job_id: id, code, message, ...(context ? { context } : {}) };
        job.errors.push(error);
        send(error);
      },
    };
    jobs.set(id, job);
    return job;
  }

  /** What Core must know about a job again (after a reconnect, or asked): its ERRORs, then its last STATUS. */
  function sendReports(job: Job): void {
    for (const error of job.errors) send(error);
    if (job.lastStatus) send(job.lastStatus);
  }

  /** Sends lines as LOG frames that stay under the frame limit; false when the socket is not ready. */
  function sendLines(job: Job, lines: LogLine[]): boolean {
    let start = 0;
    while (start < lines.length) {
      let end = start;
      let cost = 0;
      while (end < lines.length && end - start < 1000 && (end === start || cost + frameCost(lines[end]!) <= MAX_FRAME_ESTIMATE)) {
        cost += frameCost(lines[end]!);
        end++;
      }
      if (!send({ type: "LOG", job_id: job.id, lines: lines.slice(start, end) })) return false;
      stats.linesSent += end - start;
      start = end;
    }
    return true;
  }

  function flushBatch(job: Job): void {
    if (job.batch.length === 0) return;
    const entries = job.batch;
    job.batch = [];
    if (sendLines(job, entries.map((entry) => entry.line))) {
      const now = Date.now();
      for (const entry of entries) entry.sentAt = now;
    }
  }

  /** Sends again what Core has not acknowledged: everything after a reconnect, or lines unacknowledged for too long. */
  function resendUnacked(job: Job, olderThan: number): void {
    flushBatch(job);
    const due = job.unacked.filter((entry) => entry.sentAt <= olderThan);
    for (let i = 0; i < due.length; i += 500) {
      const chunk = due.slice(i, i + 500);
      if (!sendLines(job, chunk.map((e) => e.line))) return;
      const now = Date.now();
      for (const entry of chunk) entry.sentAt = now;
    }
  }

  const unackedTotal = () => [...jobs.values()].reduce((n, job) => n + job.unacked.length, 0);
  const congested = () => unackedTotal() > MAX_UNACKED_LINES || (ws?.bufferedAmount ?? 0) > MAX_SOCKET_BUFFER;

  function wakeWaiters(): void {
    for (const wake of [...waiters]) wake();
  }

  /** Resolves when `ready()` holds, checked on every acknowledgement and every 20 ms (the socket buffer drains unseen). */
  function until(ready: () => boolean, timeoutMs = Infinity): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (value: boolean) => {
        waiters.delete(check);
        clearInterval(poll);
        clearTimeout(timer);
        resolve(value);
      };
      const check = () => {
        if (ready()) finish(true);
        else if (ended) finish(false);
      };
      waiters.add(check);
      const poll = setInterval(check, 20);
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => finish(ready()), timeoutMs) : undefined;
    });
  }

  const batchTimer = setInterval(() => {
    for (const job of jobs.values()) flushBatch(job);
  }, LOG_BATCH_MS);
  const resendTimer = setInterval(() => {
    if (!ready) return;
    for (const job of jobs.values()) resendUnacked(job, Date.now() - RESEND_AFTER_MS);
  }, RESEND_AFTER_MS / 2);

  function end(reason: ConnectionEnd): void {
    if (ended) return;
    ended = reason;
    clearInterval(batchTimer);
    clearInterval(resendTimer);
    clearInterval(heartbeatTimer);
    clearTimeout(reconnectTimer);
    wakeWaiters();
    resolveDone(reason);
  }

  async function stop(): Promise<void> {
    if (!ended) {
      const socket = ws;
      end({ reason: "stopped" });
      if (socket && socket.readyState !== WebSocket.CLOSED) socket.close(1000, "agent stopping");
    }
    await done;
  }

  void connect();
  return {
    agentId,
    done,
    stop,
    jobs: () => [...jobs.values()],
    restoreJob: ({ id, kind, lastStatus }) => jobs.get(id) ?? createJob(id, kind, 1, lastStatus),
    room: async () => void (await until(() => !congested())),
    settle: (timeoutMs) => until(() => unackedTotal() === 0, timeoutMs),
    stats: () => ({ ...stats, unacked: unackedTotal() }),
  };
}
