import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTunnel } from "../../agent/src/tunnel/tunnel.ts";
import { issueAgentToken, agentStub } from "../../src/agents/issue-token.ts";
import { environments, workflowRuns } from "../../src/db/schema.ts";
import { newId, newSubdomainHash } from "../../src/lib/ids.ts";
import { Logger } from "../../src/lib/logger.ts";
import { publishPreviewHosts } from "../../src/preview/snapshot.ts";
import { previewTunnelStub } from "../../src/preview/stubs.ts";
import { patternByte, testApp } from "../../scripts/agent-sim/test-app.ts";
import { connect, heartbeat, hello, logLines } from "../agents/helpers.ts";
import { db } from "../db.ts";
import { seedProject, seedTeam, seedUser } from "../harness.ts";
import { inProcessUpstream } from "../in-process-upstream.ts";
import { EXPOSURE, openThroughWorker, servePreview, visit, waitFor, type ServedPreview } from "./helpers.ts";

// Visitors' traffic through the real Worker, the preview host and tunnel Durable Objects, and the agent's tunnel
// client (the simulator's), to the simulator's test app: what the app receives and what the visitor gets back.

const MB = 1024 * 1024;
let preview: ServedPreview;

beforeAll(async () => {
  preview = await servePreview({ access: "public" });
});
afterAll(() => preview?.agent.stop());

/** Reads a body as it streams, checking the test app's byte pattern; returns the byte count (never holds it whole). */
async function drainPattern(body: ReadableStream<Uint8Array>): Promise<{ bytes: number; ok: boolean }> {
  const reader = body.getReader();
  let bytes = 0;
  let ok = true;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { bytes, ok };
    for (let i = 0; i < value.byteLength; i++) if (value[i] !== patternByte(bytes + i)) ok = false;
    bytes += value.byteLength;
  }
}

function patternBody(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const size = Math.min(256 * 1024, total - sent);
      const chunk = new Uint8Array(size);
      for (let i = 0; i < size; i++) chunk[i] = patternByte(sent + i);
      sent += size;
      controller.enqueue(chunk);
    },
  });
}

describe("HTTP through the tunnel", () => {
  it("carries every method with its body, path and query", async () => {
    for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) {
      const hasBody = method !== "GET" && method !== "OPTIONS";
      const response = await visit(preview.url("/echo?q=a%20b&n=1"), { method, body: hasBody ? `body of ${method}` : undefined });
      expect(response.status, method).toBe(200);
      const echo = await response.json<{ method: string; path: string; body: string }>();
      expect(echo).toMatchObject({ method, path: "/echo?q=a%20b&n=1", body: hasBody ? `body of ${method}` : "" });
    }
    // A malformed escape is the app's business: passed on as sent.
    const odd = await visit(preview.url("/echo?bad=%zz&q=a+b"));
    expect(odd.status).toBe(200);
    expect((await odd.json<{ path: string }>()).path).toBe("/echo?bad=%zz&q=a+b");
    const head = await visit(preview.url("/status/200"), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("x-status")).toBe("200");
    expect(await head.text()).toBe("");
  });

  it("passes the visitor's headers, adds X-Forwarded-*, and keeps the app's Authorization and cookies untouched", async () => {
    const response = await visit(preview.url("/echo"), {
      headers: {
        Authorization: "Bearer app-own-token",
        Cookie: "app_a=1; app_b=two",
        "X-Custom": "kept",
        "CF-Connecting-IP": "203.0.113.9",
        "X-Forwarded-For": "198.51.100.66",
        Connection: "keep-alive, X-Hop",
        "X-Hop": "hop-by-hop",
      },
    });
    const headers = new Map((await response.json<{ headers: [string, string][] }>()).headers);
    expect(headers.get("authorization")).toBe("Bearer app-own-token");
    expect(headers.get("cookie")).toBe("app_a=1; app_b=two");
    expect(headers.get("x-custom")).toBe("kept");
    expect(headers.get("host")).toBe(`${preview.hash}.${env.PREVIEW_DOMAIN}`);
    expect(headers.get("x-forwarded-host")).toBe(`${preview.hash}.${env.PREVIEW_DOMAIN}`);
    expect(headers.get("x-forwarded-proto")).toBe("https");
    // The visitor's address as Cloudflare saw it; a client-sent X-Forwarded-For is not trusted.
    expect(headers.get("x-forwarded-for")).toBe("203.0.113.9");
    expect(headers.has("x-hop")).toBe(false);
    expect([...headers.keys()].filter((name) => name.startsWith("x-stagely"))).toEqual([]);
  });

  it("returns the app's status codes, headers and cookies as they are (redirects not followed, no Stagely page)", async () => {
    for (const code of [201, 204, 301, 304, 404, 418, 500, 503]) {
      const response = await visit(preview.url(`/status/${code}`));
      expect(response.status, String(code)).toBe(code);
      expect(response.headers.get("x-status")).toBe(String(code));
      const text = await response.text();
      if (code === 204 || code === 304) expect(text).toBe("");
      else expect(text).toBe(`status ${code}`);
      if (code === 301) expect(response.headers.get("location")).toBe("/echo");
    }
    const cookies = await visit(preview.url("/cookies"));
    expect(cookies.headers.getSetCookie()).toEqual(["app_session=abc123; Path=/; HttpOnly", "app_theme=dark; Path=/"]);
  });

  it("passes an app's compressed body through as the app encoded it", async () => {
    const response = await visit(preview.url("/gzip"), { headers: { "Accept-Encoding": "gzip" } });
    expect(response.headers.get("content-encoding")).toBe("gzip");
    const raw = new Uint8Array(await response.arrayBuffer());
    const text = raw[0] === 0x1f && raw[1] === 0x8b ? await new Response(new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip"))).text() : new TextDecoder().decode(raw);
    expect(text).toBe("compressed by the app ".repeat(100));
  });

  it("streams a large download and a large upload, in both directions, intact", { timeout: 60_000 }, async () => {
    const size = 24 * MB;
    const download = await visit(preview.url(`/bytes/${size}`));
    expect(download.status).toBe(200);
    expect(await drainPattern(download.body!)).toEqual({ bytes: size, ok: true });

    const withLength = await visit(preview.url(`/bytes/${MB}?length=1`));
    expect(withLength.headers.get("content-length")).toBe(String(MB));
    expect(await drainPattern(withLength.body!)).toEqual({ bytes: MB, ok: true });

    const upload = await visit(preview.url("/upload"), { method: "POST", body: patternBody(size) });
    expect(await upload.json()).toEqual({ bytes: size, pattern_ok: true });
  });

  it("relays server-sent events as they are sent, not when the stream ends", async () => {
    const response = await visit(preview.url("/sse?n=3&interval_ms=400"));
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    // Buffered, the first read would hold every event (the app needs 800 ms to write the last one).
    expect(first).toContain("data: event 1");
    expect(first).not.toContain("event 3");
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain("data: event 3");
  });

  it("waits for a slow app (a long poll), and answers 504 when the app does not answer in time", { timeout: 30_000 }, async () => {
    const slow = await visit(preview.url("/slow?ms=1500"));
    expect(await slow.json()).toEqual({ waited_ms: 1500 });

    const started = Date.now();
    const never = await visit(preview.url("/never"), { headers: { Accept: "application/json" } });
    expect(never.status).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_500);
    expect(await never.json()).toMatchObject({ error: { code: "GATEWAY_TIMEOUT" } });
    const page = await visit(preview.url("/never"), { headers: { Accept: "text/html" } });
    expect(page.status).toBe(504);
    expect(await page.text()).toContain("The app did not answer");
  });

  it("counts the app's time to answer from the end of the upload, not its start", { timeout: 40_000 }, async () => {
    // 12 s of upload against a 10 s answer timeout: the app answers as soon as it has the body.
    let sent = 0;
    const trickle = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 12) return controller.close();
        if (sent > 0) await new Promise((r) => setTimeout(r, 1000));
        const chunk = new Uint8Array(1000);
        for (let i = 0; i < chunk.length; i++) chunk[i] = patternByte(sent * 1000 + i);
        sent++;
        controller.enqueue(chunk);
      },
    });
    const upload = await visit(preview.url("/upload"), { method: "POST", body: trickle });
    expect(upload.status).toBe(200);
    expect(await upload.json()).toEqual({ bytes: 12_000, pattern_ok: true });
  });

  it("serves 50 requests at once, each its own answer", async () => {
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => visit(preview.url(`/echo?i=${i}`), { method: "POST", body: `request ${i}` })));
    const bodies = await Promise.all(responses.map((r) => r.json<{ path: string; body: string }>()));
    bodies.forEach((body, i) => expect(body).toMatchObject({ path: `/echo?i=${i}`, body: `request ${i}` }));
  });

  it("keeps one slow reader from stalling the others", { timeout: 30_000 }, async () => {
    // A download nobody reads holds its stream window; the other exchanges keep flowing.
    const stalled = await visit(preview.url(`/bytes/${64 * MB}`));
    const first = await stalled.body!.getReader().read();
    expect(first.done).toBe(false);
    const others = await Promise.all(Array.from({ length: 10 }, () => visit(preview.url(`/bytes/${2 * MB}`))));
    for (const response of others) expect(await drainPattern(response.body!)).toEqual({ bytes: 2 * MB, ok: true });
  });
});

describe("WebSockets through the tunnel", () => {
  it("relays text and binary messages both ways, the chosen subprotocol, and the app's close", async () => {
    const response = await visit(preview.url("/hmr"), { headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "vite-hmr, other" } });
    expect(response.status).toBe(101);
    expect(response.headers.get("sec-websocket-protocol")).toBe("vite-hmr");
    const ws = response.webSocket!;
    ws.accept();
    ws.binaryType = "arraybuffer";
    const received: (string | ArrayBuffer)[] = [];
    const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve));
    ws.addEventListener("message", (event) => {
      received.push(event.data as string | ArrayBuffer);
    });
    ws.send("hello");
    ws.send(new Uint8Array([1, 2, 3, 250]));
    await waitFor("two echoes", () => received.length >= 2);
    expect(received[0]).toBe("hello");
    expect([...new Uint8Array(received[1] as ArrayBuffer)]).toEqual([1, 2, 3, 250]);
    ws.send("close:4321");
    const event = await closed;
    expect(event.code).toBe(4321);
  });

  it("holds many WebSockets at once", async () => {
    const sockets = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const response = await visit(preview.url(`/ws/${i}`), { headers: { Upgrade: "websocket" } });
        const ws = response.webSocket!;
        ws.accept();
        return ws;
      }),
    );
    const echoes = await Promise.all(
      sockets.map(
        (ws, i) =>
          new Promise<string>((resolve) => {
            ws.addEventListener("message", (event) => resolve(event.data as string), { once: true });
            ws.send(`socket ${i}`);
          }),
      ),
    );
    expect(echoes).toEqual(sockets.map((_, i) => `socket ${i}`));
    for (const ws of sockets) ws.close(1000, "done");
  });
});

describe("when the agent is not there", () => {
  it("a preview whose agent has no tunnel answers 502 with a clear page (and JSON for API clients)", async () => {
    const served = await servePreview();
    await served.agent.stop();
    await waitFor("the tunnel to close", async () => !(await previewTunnelStub(env, served.agentId).isConnected()));
    const page = await visit(served.url("/"), { headers: { Accept: "text/html" } });
    expect(page.status).toBe(502);
    expect(await page.text()).toContain("not connected");
    const json = await visit(served.url("/"), { headers: { Accept: "application/json" } });
    expect(json.status).toBe(502);
    expect(await json.json()).toMatchObject({ error: { code: "BAD_GATEWAY", request_id: expect.stringMatching(/^req_/) } });
  });

  it("a request waiting for its answer gets 502, and a download in progress breaks off, when the agent disconnects", { timeout: 30_000 }, async () => {
    const served = await servePreview();
    const download = await visit(served.url(`/bytes/${200 * MB}`));
    const reader = download.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    const waiting = visit(served.url("/never"), { headers: { Accept: "application/json" } });
    await waitFor("the request to reach the app", () => (served.agent.tunnel()?.stats().activeStreams ?? 0) >= 2);
    await served.agent.tunnel()!.stop();
    const answer = await waiting;
    expect(answer.status).toBe(502);
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return "ended cleanly";
      })(),
    ).rejects.toThrow();
    await served.agent.stop();
  });

  it("refuses exchanges beyond the preview's limit with 503, and serves again when they finish", { timeout: 40_000 }, async () => {
    const served = await servePreview();
    const limit = Number(env.PREVIEW_MAX_EXCHANGES);
    const pending = Array.from({ length: limit }, () => visit(served.url("/never")));
    await waitFor("every exchange to reach the app", () => served.agent.tunnel()!.stats().activeStreams === limit, 20_000);
    const refused = await visit(served.url("/echo"), { headers: { Accept: "application/json" } });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: "SERVICE_UNAVAILABLE" } });
    expect(refused.headers.get("retry-after")).toBe("5");
    // The app never answers them: they time out (504) and free their slots.
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual(Array(limit).fill(504));
    expect((await visit(served.url("/echo"))).status).toBe(200);
    await served.agent.stop();
  });
});

describe("control traffic does not wait behind preview traffic", () => {
  it("heartbeats and log lines are acknowledged while the tunnel is saturated", { timeout: 60_000 }, async () => {
    // One agent, both connections: the control socket driven by hand, the tunnel by the agent's tunnel client.
    const owner = await seedUser();
    const team = await seedTeam([{ user: owner, role: "owner" }]);
    const project = await seedProject(team.id, { previewAccess: "public" });
    const environmentId = newId("environment");
    const runId = newId("workflowRun");
    const hash = newSubdomainHash();
    await db.batch([
      db.insert(environments).values({ id: environmentId, projectId: project.id, prNumber: 7, branchName: "f", commitHash: "c".repeat(40), subdomainHash: hash, size: "small", region: "local", status: "ready" }),
      db.insert(workflowRuns).values({ id: runId, environmentId, trigger: "pr_opened", commitHash: "c".repeat(40), status: "completed", completedAt: new Date(), config: { preview: EXPOSURE } }),
    ]);
    const { agentId, token } = await issueAgentToken(env, db, { role: "preview", environmentId });
    await publishPreviewHosts(env, db, [environmentId], new Logger("warn"));
    const control = await connect(token);
    control.send(hello(agentId, "1.1.0"));
    await control.next("HELLO_ACK");
    const tunnel = startTunnel({ coreUrl: "https://stagely.test", token, resolveTarget: () => inProcessUpstream(testApp), openSocket: openThroughWorker, log: () => {} });
    await tunnel.ready;

    // Saturate: downloads nobody reads (every stream window full) and requests the app never answers.
    const url = (path: string) => `https://${hash}.${env.PREVIEW_DOMAIN}${path}`;
    const stuck = await Promise.all(Array.from({ length: 8 }, () => visit(url(`/bytes/${100 * MB}`))));
    const never = Array.from({ length: 30 }, () => visit(url("/never")));
    await waitFor("the tunnel to be busy", () => tunnel.stats().activeStreams >= 38);

    control.send(heartbeat());
    expect((await control.next("HEARTBEAT_ACK")).type).toBe("HEARTBEAT_ACK");
    const deployId = newId("workflowRun");
    const delivered = await agentStub(env, agentId).sendCommand({ type: "DEPLOY", job_id: deployId, images: {}, compose_file: "services: {}" });
    expect(delivered.delivered).toBe(true);
    expect((await control.next("DEPLOY")).job_id).toBe(deployId);
    control.send({ type: "LOG", job_id: deployId, lines: logLines(1, 50) });
    expect(await control.next("LOG_ACK")).toMatchObject({ job_id: deployId, seq: 50 });
    expect(tunnel.stats().activeStreams).toBeGreaterThanOrEqual(38);

    for (const response of stuck) await response.body!.cancel();
    await tunnel.stop();
    await Promise.all(never);
    control.ws.close(1000, "done");
  });
});

describe("extra routes", () => {
  it("sends <route>--<hash> hosts to the route's service and port, and answers 404 for a route the preview lacks", async () => {
    const targets: { service: string; port: number }[] = [];
    const served = await servePreview({ targets });
    expect((await visit(served.url("/echo", "api"))).status).toBe(200);
    expect((await visit(served.url("/echo"))).status).toBe(200);
    expect(targets).toEqual([{ service: "api", port: 8080 }, { service: "web", port: 3000 }]);
    expect((await visit(served.url("/echo", "nope"))).status).toBe(404);
    await served.agent.stop();
  });
});
