import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { readAgentConfig, type AgentConfig } from "../../src/providers/cloud-init.ts";
import { LOCAL_CLOUD_DEFAULT_PORT } from "../../src/providers/local.ts";
import { defaultAgents, simulatedAgent } from "./agents.ts";

/**
 * A pretend cloud for development and tests (the `local` provider type talks to it): instances go pending → running
 * after a boot delay, get addresses from documentation ranges, and, when an agent starter is given, run the agent
 * described by the agent.json in their cloud-init user data. State lives in memory.
 *
 *   GET    /v1/health
 *   POST   /v1/instances            {size, architecture, region, user_data, tags, client_token} → 201 {instance}
 *                                   (200 with the first instance when client_token was seen before)
 *   GET    /v1/instances?tag=k=v&page_token=…   live instances carrying every tag → {instances, next_page_token}
 *   GET    /v1/instances/:id        → {instance}
 *   DELETE /v1/instances/:id        → 204 (stops its agent)
 * Errors: {"error": {"code", "message"}} with 400 or 404.
 */

export interface RunningAgent {
  stop(): Promise<void>;
}
/** Starts the agent of a VM that finished booting. */
export type StartAgent = (agent: AgentConfig) => RunningAgent | Promise<RunningAgent>;

export interface LocalCloudOptions {
  /** How long an instance stays pending (default 1500 ms). */
  bootDelayMs?: number;
  /**
   * Default: the agent simulator (scripts/agent-sim) for createLocalCloud; startLocalCloud runs the real agent when a
   * Docker engine answers (scripts/local-cloud/agents.ts). `false`: instances run no agent.
   */
  startAgent?: StartAgent | false;
  log?: (line: string) => void;
}

type AgentStatus = "none" | "starting" | "running" | "failed" | "stopped";

interface LocalInstance {
  id: string;
  state: "pending" | "running" | "terminated";
  public_ip: string;
  private_ip: string;
  region: string;
  size: string;
  architecture: string;
  tags: Record<string, string>;
  created_at: string;
  agent: AgentStatus;
}

interface Entry {
  instance: LocalInstance;
  userData: string;
  clientToken: string;
  boot?: NodeJS.Timeout;
  agent?: Promise<RunningAgent | undefined>;
}

const MAX_BODY_BYTES = 256 * 1024;
const PAGE_SIZE = 100;

class BadRequest extends Error {}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) reject(new BadRequest(`request body exceeds ${MAX_BODY_BYTES} bytes`));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

function parseCreate(text: string) {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new BadRequest("body must be JSON");
  }
  const { size, architecture, region, user_data, tags, client_token } = body ?? {};
  const isText = (value: unknown, max: number): value is string => typeof value === "string" && value.length > 0 && value.length <= max;
  if (!isText(size, 64)) throw new BadRequest("size is required");
  if (architecture !== "amd64" && architecture !== "arm64") throw new BadRequest("architecture must be amd64 or arm64");
  if (!isText(region, 64)) throw new BadRequest("region is required");
  if (typeof user_data !== "string") throw new BadRequest("user_data must be a string");
  if (!isText(client_token, 128)) throw new BadRequest("client_token is required");
  if (typeof tags !== "object" || tags === null || Object.values(tags).some((v) => typeof v !== "string")) {
    throw new BadRequest("tags must be an object of strings");
  }
  return { size, architecture, region, userData: user_data, tags: tags as Record<string, string>, clientToken: client_token };
}

export function createLocalCloud(options: LocalCloudOptions = {}) {
  const bootDelayMs = options.bootDelayMs ?? 1500;
  const startAgent = options.startAgent === undefined ? simulatedAgent : options.startAgent;
  const log = options.log ?? (() => {});
  const records = new Map<string, Entry>();
  const byClientToken = new Map<string, Entry>();
  let addresses = 0;

  function boot(record: Entry): void {
    const { instance } = record;
    instance.state = "running";
    const agent = readAgentConfig(record.userData);
    if (!startAgent || !agent) return;
    instance.agent = "starting";
    record.agent = Promise.resolve()
      .then(() => startAgent(agent))
      .then(
        (running) => {
          instance.agent = "running";
          log(`${instance.id}: agent ${agent.agent_id} started against ${agent.core_url}`);
          return running;
        },
        (error: unknown) => {
          instance.agent = "failed";
          log(`${instance.id}: agent ${agent.agent_id} failed to start: ${error instanceof Error ? error.message : String(error)}`);
          return undefined;
        },
      );
  }

  async function terminate(record: Entry): Promise<void> {
    clearTimeout(record.boot);
    if (record.instance.state === "terminated") return;
    record.instance.state = "terminated";
    const running = await record.agent;
    if (running) {
      await running.stop().catch(() => {});
      record.instance.agent = "stopped";
    }
    log(`${record.instance.id}: terminated`);
  }

  function create(input: ReturnType<typeof parseCreate>): { status: number; instance: LocalInstance } {
    const seen = byClientToken.get(input.clientToken);
    if (seen) return { status: 200, instance: seen.instance };
    const host = (addresses++ % 254) + 1;
    const instance: LocalInstance = {
      id: `local-${randomBytes(8).toString("hex")}`,
      state: "pending",
      public_ip: `192.0.2.${host}`,
      private_ip: `198.51.100.${host}`,
      region: input.region,
      size: input.size,
      architecture: input.architecture,
      tags: input.tags,
      created_at: new Date().toISOString(),
      agent: "none",
    };
    const record: Entry = { instance, userData: input.userData, clientToken: input.clientToken };
    record.boot = setTimeout(() => boot(record), bootDelayMs);
    records.set(instance.id, record);
    byClientToken.set(input.clientToken, record);
    log(`${instance.id}: created (${input.size}, ${input.architecture}, ${input.region})`);
    return { status: 201, instance };
  }

  function list(url: URL) {
    const wanted = url.searchParams.getAll("tag").map((tag) => {
      const at = tag.indexOf("=");
      if (at < 1) throw new BadRequest("tag must look like key=value");
      return [tag.slice(0, at), tag.slice(at + 1)] as const;
    });
    const offset = Number(url.searchParams.get("page_token") || "0");
    if (!Number.isInteger(offset) || offset < 0) throw new BadRequest("page_token is invalid");
    const live = [...records.values()]
      .map((r) => r.instance)
      .filter((i) => i.state !== "terminated" && wanted.every(([key, value]) => i.tags[key] === value));
    const page = live.slice(offset, offset + PAGE_SIZE);
    return { instances: page, next_page_token: offset + PAGE_SIZE < live.length ? String(offset + PAGE_SIZE) : null };
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://local-cloud");
    const id = /^\/v1\/instances\/([^/]+)$/.exec(url.pathname)?.[1];
    if (req.method === "GET" && url.pathname === "/v1/health") return send(res, 200, { status: "ok" });
    if (req.method === "POST" && url.pathname === "/v1/instances") {
      const { status, instance } = create(parseCreate(await readBody(req)));
      return send(res, status, { instance });
    }
    if (req.method === "GET" && url.pathname === "/v1/instances") return send(res, 200, list(url));
    if (id !== undefined && (req.method === "GET" || req.method === "DELETE")) {
      const record = records.get(id);
      if (!record) return send(res, 404, { error: { code: "not_found", message: `no instance ${id.slice(0, 40)}` } });
      if (req.method === "GET") return send(res, 200, { instance: record.instance });
      await terminate(record);
      return send(res, 204);
    }
    send(res, 404, { error: { code: "not_found", message: `no route for ${req.method} ${url.pathname}` } });
  }

  return {
    /** The HTTP API as a Node request handler. */
    handle(req: IncomingMessage, res: ServerResponse): void {
      route(req, res).catch((error: unknown) => {
        if (error instanceof BadRequest) send(res, 400, { error: { code: "invalid_request", message: error.message } });
        else {
          log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
          send(res, 500, { error: { code: "internal", message: "internal error" } });
        }
      });
    },
    /** Terminates every instance (stopping their agents). */
    async close(): Promise<void> {
      await Promise.all([...records.values()].map(terminate));
    },
  };
}

/** The local cloud on its own HTTP server (npm run dev, scripts/local-cloud/main.ts). */
export async function startLocalCloud(
  options: LocalCloudOptions & { port?: number; host?: string } = {},
): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const startAgent = options.startAgent ?? (await defaultAgents(options.log ?? (() => {})));
  const cloud = createLocalCloud({ ...options, startAgent });
  const server = createServer((req, res) => cloud.handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? LOCAL_CLOUD_DEFAULT_PORT, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? "127.0.0.1"}:${port}`,
    port,
    async stop() {
      await cloud.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
