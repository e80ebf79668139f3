import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import type { CoreMessage } from "../../src/agents/protocol.ts";
import { agentStub } from "../../src/agents/issue-token.ts";
import { seedUser, type SeededUser } from "../harness.ts";

export const BASE = "https://stagely.test";

export interface DevAgent {
  agent_id: string;
  token: string;
  role: "builder" | "preview";
  project_id: string;
  environment_id: string;
  build_job_id: string | null;
}

let developer: Promise<SeededUser> | undefined;

/** A signed-in user of this test file, for the development routes (they take an API token). */
export function devUser(): Promise<SeededUser> {
  return (developer ??= seedUser({ name: "Developer" }));
}

/** An agent with the rows it needs, made through the development route (the same issueAgentToken as provisioning). */
export async function createAgent(role: "builder" | "preview", secrets: Record<string, string> = {}): Promise<DevAgent> {
  const response = await exports.default.fetch(`${BASE}/v1/dev/agents`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${(await devUser()).token}` },
    body: JSON.stringify({ role, secrets }),
  });
  if (response.status !== 201) throw new Error(`dev agent: ${response.status} ${await response.text()}`);
  return (await response.json()) as DevAgent;
}

export function stubOf(agentId: string) {
  return agentStub(env, agentId);
}

export function connectRequest(token: string | null, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(`${BASE}/v1/agent/connect`, {
    headers: { Upgrade: "websocket", ...(token === null ? {} : { Authorization: `Bearer ${token}` }), ...headers },
  });
}

type Message = CoreMessage & Record<string, unknown>;

/** The test side of an agent's WebSocket: sends objects, awaits Core's messages in order. */
export class AgentClient {
  readonly ws: WebSocket;
  readonly received: Message[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private cursor = 0;
  private waiters: (() => void)[] = [];

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.accept();
    ws.addEventListener("message", (event) => {
      this.received.push(JSON.parse(event.data as string) as Message);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason })));
  }

  send(message: unknown): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** The next message (after those already returned) matching `match`; messages skipped over stay in `received`. */
  async next(match: string | ((m: Message) => boolean) = () => true, timeoutMs = 5_000): Promise<Message> {
    const test = typeof match === "string" ? (m: Message) => m.type === match : match;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.received.length) {
        const message = this.received[this.cursor++]!;
        if (test(message)) return message;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message within ${timeoutMs} ms; received: ${JSON.stringify(this.received.map((m) => m.type))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Everything received so far of one type. */
  all(type: string): Message[] {
    return this.received.filter((m) => m.type === type);
  }

  close(code = 1000): void {
    try {
      this.ws.close(code, "test done");
    } catch {
      // already closed
    }
  }
}

export async function connect(token: string): Promise<AgentClient> {
  const response = await connectRequest(token);
  if (response.status !== 101 || !response.webSocket) throw new Error(`connect: ${response.status} ${await response.text()}`);
  return new AgentClient(response.webSocket);
}

export function hello(agentId: string, version = "1.0.0") {
  return {
    type: "HELLO",
    version,
    agent_id: agentId,
    system_info: { hostname: "vm-1", ip_address: "10.0.0.7", architecture: "amd64", os: "Ubuntu 24.04", docker_version: "27.3.1" },
  };
}

export function heartbeat() {
  return {
    type: "HEARTBEAT",
    timestamp: new Date().toISOString(),
    uptime_seconds: 42,
    load_average: [0.1, 0.2, 0.3],
    memory_usage: { total_mb: 4096, available_mb: 2048 },
    disk_usage: { total_gb: 80, available_gb: 50 },
  };
}

/** Connects and completes HELLO → HELLO_ACK. */
export async function connectAndHello(agent: { agent_id: string; token: string }): Promise<AgentClient> {
  const client = await connect(agent.token);
  client.send(hello(agent.agent_id));
  await client.next("HELLO_ACK");
  return client;
}

export function logLines(from: number, to: number, text = (seq: number) => `line ${seq}`) {
  const lines = [];
  for (let seq = from; seq <= to; seq++) {
    lines.push({ seq, stream: seq % 7 === 0 ? "stderr" : "stdout", timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, seq)).toISOString(), data: text(seq) });
  }
  return lines;
}

export function buildCommand(jobId: string, overrides: Record<string, unknown> = {}) {
  return {
    type: "BUILD" as const,
    job_id: jobId,
    context: { repo_url: "https://github.com/acme/app", commit_hash: "abc1234", branch: "feature", clone_token: "ghs_clone_token_value_123" },
    build_config: { context_path: ".", dockerfile: "Dockerfile", target_image: "registry.local/app:abc1234", platform: "linux/amd64" },
    registry_auth: null,
    ...overrides,
  };
}

export async function waitFor<T>(probe: () => Promise<T | undefined | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** What a successful queue send resolves to. */
export const QUEUED = { metadata: { metrics: { backlogCount: 0, backlogBytes: 0, oldestMessageTimestamp: 0 } } } as unknown as QueueSendResponse;

/** Captures what the gateway puts on the JOBS queue instead of delivering it to this Worker's consumer. */
export function mockQueue() {
  return vi.spyOn(env.JOBS, "send").mockResolvedValue(QUEUED);
}
