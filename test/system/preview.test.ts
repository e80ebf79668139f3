import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { patternByte } from "../../scripts/agent-sim/test-app.ts";
import { defaultTestBackend } from "../../scripts/local-db/index.ts";
import { patternReadable, previewRequest, startLocalPreview, type LocalPreview } from "../../scripts/lib/local-preview.ts";
import { startStack, type Stack } from "../../scripts/lib/stack.ts";

// The preview path with real sockets: wrangler dev (the Worker and its Durable Objects in workerd), the agent
// simulator on Node with its tunnel client and the test app on a real port. The things workerd tests cannot show:
// a preview reached by name at http://<hash>.preview.localhost:<port>/, and 200 MB each way with bounded memory on
// both sides of the tunnel.

const MB = 1024 * 1024;
let target: Stack;
let preview: LocalPreview;

/** RSS (MiB) of processes, read from /proc (cheap: sampling must not block the agent, which runs in this process). */
const rssOf = (pids: number[]) => pids.reduce((sum, pid) => sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024, 0);

/**
 * Every workerd process of wrangler dev (the one on the port only routes; the Worker and its Durable Objects run in
 * another), found once through the listening socket's process group.
 */
function workerdProcesses(port: string): number[] {
  const listener = Number(/pid=(\d+)/.exec(execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" }))?.[1]);
  const group = readFileSync(`/proc/${listener}/stat`, "utf8").split(") ")[1]!.split(" ")[2]!;
  return execFileSync("ps", ["-o", "pid=,comm=", "-g", group], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([, comm]) => comm === "workerd")
    .map(([pid]) => Number(pid));
}

const mib = (value: Record<string, number>) => Object.fromEntries(Object.entries(value).map(([k, v]) => [k, Math.round((v / MB) * 10) / 10]));

interface Memory {
  agent: number;
  core: number;
}

/**
 * Memory while a transfer runs: RSS (MiB) of this process (the agent side: the agent, its tunnel, the app, the
 * client) and of workerd (Core), at the start, at half way and at the end, and the peak. A side that held the body
 * would grow about 1 MiB per MB moved; the runtimes' garbage collectors let RSS rise for a while and then level off.
 */
function memoryProbe() {
  const workerd = workerdProcesses(new URL(target.apiUrl).port);
  const now = (): Memory => ({ agent: process.memoryUsage().rss / MB, core: rssOf(workerd) });
  const start = now();
  let peak = { ...start };
  let half: Memory | null = null;
  const timer = setInterval(() => {
    const m = now();
    peak = { agent: Math.max(peak.agent, m.agent), core: Math.max(peak.core, m.core) };
  }, 250);
  return {
    halfway: () => (half ??= now()),
    finish: () => {
      clearInterval(timer);
      const end = now();
      const round = (m: Memory) => ({ agent: Math.round(m.agent), core: Math.round(m.core) });
      return { start: round(start), half: round(half ?? end), end: round(end), peakGrowth: round({ agent: peak.agent - start.agent, core: peak.core - start.core }) };
    },
  };
}

beforeAll(async () => {
  target = await startStack({ backend: defaultTestBackend(), log: () => {}, github: false, cloud: false });
  preview = await startLocalPreview(target);
}, 180_000);
afterAll(async () => {
  await preview?.stop();
  await target?.stop();
});

describe("a preview on this machine", () => {
  it("answers by name at http://<hash>.preview.localhost:<port>/ (curl resolves *.localhost like browsers do)", async () => {
    const { stdout } = await promisify(execFile)("curl", ["-s", "-w", "\n%{http_code}", `http://${preview.host}/echo?via=curl`]);
    const [body, status] = [stdout.slice(0, stdout.lastIndexOf("\n")), stdout.slice(stdout.lastIndexOf("\n") + 1)];
    expect(status).toBe("200");
    const echo = JSON.parse(body) as { path: string; headers: [string, string][] };
    expect(echo.path).toBe("/echo?via=curl");
    expect(new Map(echo.headers).get("host")).toBe(preview.host);
  });

  it("relays a WebSocket (a dev server's hot reload) end to end", async () => {
    const ws = new WebSocket(`${target.apiUrl.replace(/^http/, "ws")}/hmr`, ["vite-hmr"], { headers: { Host: preview.host } });
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    expect(ws.protocol).toBe("vite-hmr");
    const echo = new Promise<string>((resolve) => ws.once("message", (data) => resolve(String(data))));
    ws.send("update /src/App.tsx");
    expect(await echo).toBe("update /src/App.tsx");
    ws.close();
  });

  it("downloads and uploads 200 MB with bounded memory on both sides of the tunnel", { timeout: 600_000 }, async () => {
    const size = 200 * MB;
    const tunnel = preview.agent.tunnel()!;
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    /** Waits until `count` has not moved for a second (the buffers on the way are full), at most 15 s; then its value. */
    const stalled = async (count: () => number) => {
      let last = count();
      let stillSince = Date.now();
      for (const deadline = Date.now() + 15_000; Date.now() < deadline && Date.now() - stillSince < 1000; ) {
        await sleep(100);
        if (count() !== last) [last, stillSince] = [count(), Date.now()];
      }
      return last;
    };

    // Download: the visitor stops reading for a while; the agent stops sending within the windows.
    const down = memoryProbe();
    const response = await previewRequest(target.apiUrl, preview.host, `/bytes/${size}`);
    expect(response.status).toBe(200);
    const sentBefore = tunnel.stats().bytesOut;
    response.body.pause();
    const stalledAt = await stalled(() => tunnel.stats().bytesOut);
    await sleep(1500);
    const heldBack = { sent: tunnel.stats().bytesOut - sentBefore, movedWhilePaused: tunnel.stats().bytesOut - stalledAt };
    let downloaded = 0;
    let intact = true;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length; i += 4099) if (chunk[i] !== patternByte(downloaded + i)) intact = false;
      downloaded += chunk.length;
      if (downloaded >= size / 2) down.halfway();
    }
    const download = down.finish();
    expect({ downloaded, intact }).toEqual({ downloaded: size, intact: true });

    // Upload: the app stops reading for a while; the visitor's upload stops within the windows.
    const up = memoryProbe();
    let sent = 0;
    const body = patternReadable(size, patternByte).on("data", (chunk: Buffer) => {
      sent += chunk.length;
      if (sent >= size / 2) up.halfway();
    });
    const answer = previewRequest(target.apiUrl, preview.host, "/upload?pause_ms=20000", { method: "POST", body, headers: { "Content-Type": "application/octet-stream" } });
    const uploadStalledAt = await stalled(() => sent);
    await sleep(1500);
    const uploadHeldBack = { sent: uploadStalledAt, movedWhilePaused: sent - uploadStalledAt };
    let text = "";
    for await (const chunk of (await answer).body) text += chunk;
    const upload = up.finish();
    expect(JSON.parse(text)).toEqual({ bytes: size, pattern_ok: true });

    console.log(
      `200 MB through the tunnel. Bytes let through while the reader paused (MiB): download ${JSON.stringify(mib(heldBack))}, upload ${JSON.stringify(mib(uploadHeldBack))}. ` +
        `RSS in MiB (agent side, Core): download ${JSON.stringify(download)}; upload ${JSON.stringify(upload)}`,
    );
    // While nobody reads, the transfer stops, and not after the body: after the tunnel's windows plus the socket buffers
    // of each hop on this machine (visitor → wrangler's entry → the Worker; tunnel; agent → app; loopback buffers grow
    // to several MiB each). Measured here: 15-17 MiB for downloads, 19-28 MiB for uploads, of 200 MB.
    for (const held of [heldBack, uploadHeldBack]) {
      expect(held.sent).toBeLessThan(48 * MB);
      expect(held.movedWhilePaused).toBe(0);
    }
    // The agent's process does not grow with the body either. (workerd's RSS, printed above, also counts garbage its
    // collector has not reclaimed yet: its bound is what the pauses show, nothing piling up on the way.)
    for (const memory of [download, upload]) expect(memory.peakGrowth.agent).toBeLessThan(size / MB / 2);
  });
});
