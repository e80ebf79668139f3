// A preview served end to end on this machine, as a visitor's browser would reach it: a preview agent created through
// the development route (its run exposing the test app), the agent simulator with its tunnel, and the test app on a
// port of its own (so a caller can also reach the app directly). Used by the preview benchmark and system tests
// against `wrangler dev` started with PREVIEW_DOMAIN=preview.localhost.
import { request as httpRequest, Agent, type IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { httpUpstream } from "../../agent/src/tunnel/http-upstream.ts";
import { startSimulatedAgent, type SimulatedAgent } from "../agent-sim/agent.ts";
import { startTestAppServer, type TestAppServer } from "../agent-sim/test-app-server.ts";
import type { Stack } from "./stack.ts";

export const LOCAL_PREVIEW_DOMAIN = "preview.localhost";
export const LOCAL_EXPOSURE = { expose: { service: "web", port: 3000 }, routes: [] };

export interface LocalPreview {
  hash: string;
  /** `<hash>.preview.localhost:<port>`: the Host a browser sends for this preview. */
  host: string;
  agentId: string;
  environmentId: string;
  agent: SimulatedAgent;
  app: TestAppServer;
  stop(): Promise<void>;
}

async function devPost(stack: PreviewStack, path: string, body: unknown): Promise<any> {
  const response = await fetch(`${stack.apiUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.apiToken}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`POST ${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** Creates a public preview served by a simulated agent, and waits until its URL answers from the app. */
/** What a local preview needs of the stack: the API and a user token for the development routes. */
export type PreviewStack = Pick<Stack, "apiUrl" | "apiToken">;

export async function startLocalPreview(stack: PreviewStack, log: (line: string) => void = () => {}): Promise<LocalPreview> {
  const apiUrl = stack.apiUrl;
  const app = await startTestAppServer();
  const created = await devPost(stack, "/v1/dev/agents", { role: "preview", preview: LOCAL_EXPOSURE, preview_access: "public" });
  const upstream = httpUpstream({ host: "127.0.0.1", port: app.port });
  const agent = startSimulatedAgent({ coreUrl: apiUrl, token: created.token, speed: Number.POSITIVE_INFINITY, log, resolveTarget: () => upstream });
  await devPost(stack, `/v1/dev/agents/${created.agent_id}/commands`, {
    type: "DEPLOY",
    job_id: created.run_id,
    images: { web: "local/web:1" },
    compose_file: "services:\n  web: {image: web, ports: ['3000']}\n",
    preview: LOCAL_EXPOSURE,
  });
  const host = `${created.subdomain_hash}.${LOCAL_PREVIEW_DOMAIN}:${new URL(apiUrl).port}`;
  const preview: LocalPreview = {
    hash: created.subdomain_hash,
    host,
    agentId: created.agent_id,
    environmentId: created.environment_id,
    agent,
    app,
    stop: async () => {
      await agent.stop();
      await app.stop();
    },
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await previewRequest(apiUrl, host, "/echo").catch(() => null);
    const status = response?.status;
    response?.body.resume();
    if (status === 200) return preview;
    if (Date.now() > deadline) {
      await preview.stop();
      throw new Error(`the preview at http://${host}/ did not answer 200 within 60 s (last status ${status ?? "none"})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 512 });

/**
 * A request to `http://<host>/<path>` sent to wrangler dev's own address: Node does not resolve `*.localhost`
 * (browsers and curl do), so the name travels in the Host header. Bodies stream both ways.
 */
export function previewRequest(
  apiUrl: string,
  host: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: Readable } = {},
): Promise<{ status: number; headers: IncomingMessage["headers"]; body: IncomingMessage }> {
  const api = new URL(apiUrl);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: api.hostname, port: api.port, method: options.method ?? "GET", path, headers: { ...options.headers, Host: host }, agent: keepAlive });
    outgoing.on("error", reject);
    outgoing.on("response", (response) => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: response }));
    if (options.body) options.body.pipe(outgoing);
    else outgoing.end();
  });
}

/** A readable of `total` bytes of the test app's pattern, produced as it is read. */
export function patternReadable(total: number, patternByte: (index: number) => number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const size = Math.min(256 * 1024, total - sent);
      const chunk = Buffer.allocUnsafe(size);
      for (let i = 0; i < size; i++) chunk[i] = patternByte(sent + i);
      sent += size;
      this.push(chunk);
    },
  });
}

/**
 * A GET through Node's http client answered as a web Response (what scripts/bench/load.ts measures): to `url`, with
 * `host` as the Host header when given. The same client for the preview path and for the app directly, so the two
 * are compared fairly.
 */
export function httpGet(url: string, host?: string): Promise<Response> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, headers: host ? { Host: host } : {}, agent: keepAlive });
    outgoing.on("error", reject);
    outgoing.on("response", (response) =>
      resolve(new Response(Readable.toWeb(response) as unknown as ReadableStream<Uint8Array>, { status: response.statusCode ?? 0 })),
    );
    outgoing.end();
  });
}
