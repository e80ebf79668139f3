import * as z from "zod";

/**
 * Agent protocol v1: JSON text frames, flat messages with a `type` (ARCHITECTURE.md section 5, docs/agent-protocol.md).
 * Shared by the Durable Object, the agent simulator and tests. Fields this version does not know are ignored, so a
 * minor version may add fields; a different major version is refused. v1.1 adds DEPLOY's `preview` field and the
 * preview tunnel, a second socket with binary frames (tunnel-protocol.ts).
 */
export const PROTOCOL_MAJOR = 1;
export const HEARTBEAT_INTERVAL_SECONDS = 30;
/** An agent that sent nothing for this many heartbeat intervals is marked disconnected. */
export const MISSED_HEARTBEATS = 3;
export const MAX_FRAME_BYTES = 1024 * 1024;
export const MAX_LINES_PER_LOG = 1000;
/** Longer lines are cut and marked; agents should split them before sending. */
export const MAX_LINE_CHARS = 16 * 1024;

/** WebSocket close codes Core uses (4000-4999 are application codes). */
export const closeCodes = {
  superseded: 4000,
  authFailed: 4001,
  versionMismatch: 4002,
  revoked: 4003,
  heartbeatTimeout: 4008,
} as const;

const jobId = z.string().min(1).max(64);
const timestamp = z.iso.datetime({ offset: true });
const count = z.number().finite().nonnegative();

export const jobStates = ["pending", "running", "completed", "failed", "terminated"] as const;
export type JobState = (typeof jobStates)[number];

// ---- agent → Core ----

export const helloMessage = z.object({
  type: z.literal("HELLO"),
  /** The agent's semantic version; its major number is the protocol major it speaks. */
  version: z.string().regex(/^\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$/, "must be a semantic version like 1.0.0").max(64),
  agent_id: z.string().regex(/^agt_[0-9a-z]{16}$/, "must be an agent id"),
  system_info: z.object({
    hostname: z.string().max(255),
    ip_address: z.string().max(64),
    architecture: z.string().max(32),
    os: z.string().max(255),
    docker_version: z.string().max(64).nullish(),
    /** Since 1.1: "2.29.1" (the docker compose plugin) or "1.29.2 (docker-compose)"; null without compose. */
    compose_version: z.string().max(64).nullish(),
  }),
});

export const heartbeatMessage = z.object({
  type: z.literal("HEARTBEAT"),
  timestamp,
  uptime_seconds: count,
  load_average: z.tuple([count, count, count]),
  memory_usage: z.object({ total_mb: count, available_mb: count }),
  disk_usage: z.object({ total_gb: count, available_gb: count }),
});

const logLine = z.object({
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  stream: z.enum(["stdout", "stderr"]),
  timestamp,
  data: z.string(),
});
export type LogLine = z.infer<typeof logLine>;

/** A batch `{job_id, lines: [...]}`, or a single line with its fields at the top level; both become a batch. */
export const logMessage = z.union([
  z.object({ type: z.literal("LOG"), job_id: jobId, lines: z.array(logLine).min(1).max(MAX_LINES_PER_LOG) }),
  logLine.extend({ type: z.literal("LOG"), job_id: jobId }).transform(({ type, job_id, seq, stream, timestamp, data }) => ({
    type,
    job_id,
    lines: [{ seq, stream, timestamp, data }],
  })),
]);

export const serviceReport = z.object({
  name: z.string().min(1).max(128),
  status: z.string().max(64),
  container_id: z.string().max(128).nullish(),
  port: z.number().int().min(0).max(65535).nullish(),
  health: z.string().max(64).nullish(),
});
export type ServiceReport = z.infer<typeof serviceReport>;

export const statusMessage = z.object({
  type: z.literal("STATUS"),
  job_id: jobId,
  state: z.enum(jobStates),
  exit_code: z.number().int().min(-1024).max(1024).nullish(),
  duration_seconds: count.nullish(),
  artifact_url: z.string().max(2048).nullish(),
  services: z.array(serviceReport).max(100).nullish(),
});

export const agentErrorMessage = z.object({
  type: z.literal("ERROR"),
  job_id: jobId.nullish(),
  code: z.string().min(1).max(64),
  message: z.string().max(4096),
  context: z.record(z.string(), z.unknown()).nullish(),
});

export const pongMessage = z.object({ type: z.literal("PONG"), timestamp });

const agentMessages = {
  HELLO: helloMessage,
  HEARTBEAT: heartbeatMessage,
  LOG: logMessage,
  STATUS: statusMessage,
  ERROR: agentErrorMessage,
  PONG: pongMessage,
} as const;

export type HelloMessage = z.infer<typeof helloMessage>;
export type HeartbeatMessage = z.infer<typeof heartbeatMessage>;
export type LogMessage = z.output<typeof logMessage>;
export type StatusMessage = z.infer<typeof statusMessage>;
export type AgentErrorMessage = z.infer<typeof agentErrorMessage>;
export type AgentMessage = { [K in keyof typeof agentMessages]: z.output<(typeof agentMessages)[K]> }[keyof typeof agentMessages];

// ---- Core → agent ----

const registryAuth = z.object({ registry: z.string(), username: z.string(), password: z.string() });

export const buildCommand = z.object({
  type: z.literal("BUILD"),
  job_id: jobId,
  context: z.object({
    repo_url: z.string().min(1).max(2048),
    commit_hash: z.string().min(1).max(64),
    branch: z.string().max(255),
    clone_token: z.string().max(4096).nullish(),
  }),
  build_config: z.object({
    context_path: z.string().min(1).max(1024),
    dockerfile: z.string().min(1).max(1024),
    target_image: z.string().min(1).max(1024),
    platform: z.string().min(1).max(128),
    build_args: z.record(z.string(), z.string()).default({}),
    cache_from: z.array(z.string()).default([]),
    cache_to: z.array(z.string()).default([]),
    /** Since 1.1: the build is killed and fails after this long (stagely.yaml `timeout`; the agent's default is 30 minutes). */
    timeout_seconds: z.number().int().min(1).max(24 * 3600).nullish(),
    /**
     * Since 1.1: push `target_image` and report the pushed digest (true), or keep the image on this VM and report its
     * local id (false). Omitted: builder agents push, preview agents (building for themselves) do not.
     */
    push: z.boolean().nullish(),
  }),
  registry_auth: registryAuth.nullish(),
});

const exposedPort = z.object({ service: z.string().min(1).max(128), port: z.number().int().min(1).max(65535) });

/** The compose service and container port the preview URL reaches, and extra `<name>--<hash>` hosts. */
export const previewExposure = z.object({
  expose: exposedPort.nullable(),
  routes: z.array(exposedPort.extend({ name: z.string().min(1).max(45) })).max(32).default([]),
});
export type PreviewExposure = z.output<typeof previewExposure>;

export const deployCommand = z.object({
  type: z.literal("DEPLOY"),
  job_id: jobId,
  images: z.record(z.string(), z.string()),
  compose_file: z.string(),
  secrets: z.array(z.object({ key: z.string(), value: z.string(), scope: z.string() })).default([]),
  files: z.array(z.object({ path: z.string(), content_base64: z.string(), mode: z.string() })).default([]),
  lifecycle: z
    .object({ on_start: z.array(z.object({ service: z.string(), command: z.string() })).default([]) })
    .default({ on_start: [] }),
  /** Since 1.1: credentials for pulling `images` from a private registry (the agent logs in, pulls, logs out). */
  registry_auth: registryAuth.nullish(),
  /** v1.1: what the preview URL reaches, from stagely.yaml `preview.expose` and `preview.routes`; absent for old runs. */
  preview: previewExposure.nullish(),
});

export const terminateCommand = z.object({
  type: z.literal("TERMINATE"),
  reason: z.string().max(1024),
  grace_period_seconds: z.number().int().min(0).max(3600).default(30),
});

/** What Core's internal API may send to an agent (the Durable Object's `sendCommand`). */
export const agentCommand = z.discriminatedUnion("type", [buildCommand, deployCommand, terminateCommand]);
export type AgentCommand = z.output<typeof agentCommand>;
export type AgentCommandInput = z.input<typeof agentCommand>;
export type BuildCommand = z.output<typeof buildCommand>;
export type DeployCommand = z.output<typeof deployCommand>;

export const coreErrorCodes = ["AUTH_FAILED", "VERSION_MISMATCH", "BAD_MESSAGE", "HELLO_REQUIRED", "UNKNOWN_JOB", "LOG_LIMIT_EXCEEDED", "INTERNAL"] as const;
export type CoreErrorCode = (typeof coreErrorCodes)[number];

/** Everything Core sends an agent: the control messages and the commands. Agents validate each frame with it. */
export const coreMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("HELLO_ACK"), status: z.literal("connected"), agent_id: z.string(), heartbeat_interval: z.number().positive() }),
  z.object({ type: z.literal("HEARTBEAT_ACK") }),
  z.object({ type: z.literal("LOG_ACK"), job_id: jobId, seq: z.number().int().min(0) }),
  z.object({ type: z.literal("PING") }),
  z.object({ type: z.literal("STATUS_REQUEST") }),
  z.object({ type: z.literal("ERROR"), code: z.enum(coreErrorCodes), message: z.string(), job_id: z.string().optional() }),
  buildCommand,
  deployCommand,
  terminateCommand,
]);
export type CoreMessage = z.output<typeof coreMessage>;

// ---- sizes ----

/** The UTF-8 size of a string, without encoding it (a lone surrogate counts as the 3 bytes of U+FFFD). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a pair: two units, four bytes
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/** Whether a text frame is over MAX_FRAME_BYTES in UTF-8, counting only when its length leaves a doubt. */
export function exceedsFrameLimit(frame: string): boolean {
  if (frame.length > MAX_FRAME_BYTES) return true;
  if (frame.length * 3 <= MAX_FRAME_BYTES) return false;
  return utf8Length(frame) > MAX_FRAME_BYTES;
}

/**
 * A command that cannot be sent: its frame would be over the agent's frame limit. Permanent (sending it again
 * cannot help), and recognisable by its name after crossing an RPC boundary (`isCommandTooLarge`).
 */
export class CommandTooLargeError extends Error {
  readonly bytes: number;

  constructor(command: AgentCommand, bytes: number) {
    super(`the ${command.type} command is ${bytes} bytes, over the agent protocol's frame limit of ${MAX_FRAME_BYTES} bytes${sizeHint(command)}`);
    this.name = "CommandTooLargeError";
    this.bytes = bytes;
  }
}

export function isCommandTooLarge(error: unknown): error is Error {
  return error instanceof Error && error.name === "CommandTooLargeError";
}

function sizeHint(command: AgentCommand): string {
  if (command.type !== "DEPLOY") return "";
  const files = command.files.reduce((n, f) => n + f.content_base64.length, 0);
  const secrets = command.secrets.reduce((n, s) => n + utf8Length(s.key) + utf8Length(s.value), 0);
  return ` (compose file ${utf8Length(command.compose_file)} bytes, file secrets ${files} bytes as base64, environment secrets ${secrets} bytes)`;
}

// ---- parsing ----

export type ParseResult =
  | { ok: true; message: AgentMessage }
  | { ok: false; code: "BAD_MESSAGE" | "VERSION_MISMATCH"; message: string };

/** The protocol major of a HELLO's `version`, checked before the rest of the frame so any major can be told it is refused. */
function majorOf(version: unknown): number | undefined {
  if (typeof version !== "string") return undefined;
  const match = /^(\d+)\./.exec(version);
  return match ? Number(match[1]) : undefined;
}

/** Parses one text frame. Never throws: anything wrong becomes a result naming the problem (never echoing values). */
export function parseAgentFrame(frame: string | ArrayBuffer): ParseResult {
  if (typeof frame !== "string") return { ok: false, code: "BAD_MESSAGE", message: "frames must be JSON text, not binary" };
  if (exceedsFrameLimit(frame)) return { ok: false, code: "BAD_MESSAGE", message: `frame exceeds ${MAX_FRAME_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch {
    return { ok: false, code: "BAD_MESSAGE", message: "frame is not valid JSON" };
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, code: "BAD_MESSAGE", message: "frame must be a JSON object with a type" };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string" || !Object.hasOwn(agentMessages, type)) {
    const shown = typeof type === "string" ? JSON.stringify(type.slice(0, 32)) : "missing";
    return { ok: false, code: "BAD_MESSAGE", message: `unknown message type ${shown}` };
  }
  if (type === "HELLO") {
    const major = majorOf((value as { version?: unknown }).version);
    if (major !== undefined && major !== PROTOCOL_MAJOR) {
      return { ok: false, code: "VERSION_MISMATCH", message: `protocol major ${major} is not supported; this server speaks ${PROTOCOL_MAJOR}` };
    }
  }
  const result = agentMessages[type as keyof typeof agentMessages].safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.slice(0, 5).map((issue) => `${issue.path.join(".") || "(frame)"}: ${issue.message}`);
    return { ok: false, code: "BAD_MESSAGE", message: `invalid ${type}: ${issues.join("; ")}` };
  }
  return { ok: true, message: result.data as AgentMessage };
}
