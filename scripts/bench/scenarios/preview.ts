// Preview traffic under `wrangler dev`: a visitor's requests through the whole path (Worker → preview host Durable
// Object → tunnel Durable Object → the simulator's tunnel client → the test app on its port) next to the same requests
// straight to the app, in one run; 100 MB each way; and many WebSockets at once (a dev server's hot reload per tab).
// Sizes from the environment: BENCH_PREVIEW_MB (default 100), BENCH_PREVIEW_WEBSOCKETS (default 200).
import WebSocket from "ws";
import { patternByte } from "../../agent-sim/test-app.ts";
import { httpGet, patternReadable, previewRequest, startLocalPreview } from "../../lib/local-preview.ts";
import { runLoad } from "../load.ts";
import type { BenchScenario } from "../types.ts";

const MB = 1024 * 1024;
const envNumber = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const previewScenario: BenchScenario = {
  name: "preview",
  async run({ target, total, concurrency, log }) {
    log("starting a preview (simulated agent, tunnel, test app) ...");
    const preview = await startLocalPreview(target);
    const rows: Record<string, unknown>[] = [];
    try {
      const viaPreview = () => httpGet(`${target.apiUrl}/echo`, preview.host);
      const direct = () => httpGet(`http://127.0.0.1:${preview.app.port}/echo`);
      // The simplest request the Worker answers, for what wrangler dev costs on this machine at this moment.
      const workerAlone = () => httpGet(`${target.apiUrl}/health`);
      for (const [name, makeRequest] of [
        ["GET /echo straight to the app", direct],
        ["GET /health of the Worker (no preview)", workerAlone],
        ["GET /echo through the preview URL", viaPreview],
      ] as const) {
        log(`${name}: warming up, then ${total} requests at concurrency ${concurrency} ...`);
        await runLoad({ total: 100, concurrency, makeRequest });
        await target.resetDbStats();
        const result = await runLoad({ total, concurrency, makeRequest });
        const stats = await target.dbStats();
        rows.push({ scenario: name, ...result, db_round_trips_per_request: Number((stats.round_trips / total).toFixed(3)) });
      }

      const size = envNumber("BENCH_PREVIEW_MB", 100) * MB;
      for (const [name, host, base] of [
        ["straight to the app", undefined, `http://127.0.0.1:${preview.app.port}`],
        ["through the preview URL", preview.host, target.apiUrl],
      ] as const) {
        log(`${size / MB} MB download and upload ${name} ...`);
        const api = new URL(base);
        const request = (path: string, options: Parameters<typeof previewRequest>[3] = {}) =>
          previewRequest(`${api.protocol}//${api.host}`, host ?? api.host, path, options);
        let started = performance.now();
        const download = await request(`/bytes/${size}`);
        let received = 0;
        for await (const chunk of download.body as AsyncIterable<Buffer>) received += chunk.length;
        const downloadSeconds = (performance.now() - started) / 1000;
        started = performance.now();
        const upload = await request("/upload", { method: "POST", body: patternReadable(size, patternByte) });
        let answer = "";
        for await (const chunk of upload.body) answer += chunk;
        const uploadSeconds = (performance.now() - started) / 1000;
        const ok = received === size && (JSON.parse(answer) as { bytes: number }).bytes === size;
        rows.push({
          scenario: `${size / MB} MB ${name}`,
          download_mb_s: Number((size / MB / downloadSeconds).toFixed(1)),
          upload_mb_s: Number((size / MB / uploadSeconds).toFixed(1)),
          intact: ok,
        });
      }

      const count = envNumber("BENCH_PREVIEW_WEBSOCKETS", 200);
      log(`${count} WebSockets through the preview URL at once ...`);
      const wsUrl = `${target.apiUrl.replace(/^http/, "ws")}/hmr`;
      const opened: number[] = [];
      const started = performance.now();
      const settled = await Promise.allSettled(
        Array.from({ length: count }, async () => {
          const t0 = performance.now();
          const ws = new WebSocket(wsUrl, { headers: { Host: preview.host } });
          await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject), ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))));
          opened.push(performance.now() - t0);
          return ws;
        }),
      );
      const openSeconds = (performance.now() - started) / 1000;
      const sockets = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
      const echoes: number[] = [];
      await Promise.all(
        sockets.map(async (ws, i) => {
          const t0 = performance.now();
          const echoed = new Promise<void>((resolve) => ws.once("message", () => resolve()));
          ws.send(`message ${i}`);
          await echoed;
          echoes.push(performance.now() - t0);
        }),
      );
      for (const ws of sockets) ws.close();
      opened.sort((a, b) => a - b);
      echoes.sort((a, b) => a - b);
      rows.push({
        scenario: `${count} WebSockets at once`,
        open: sockets.length,
        failed: count - sockets.length,
        all_open_s: Number(openSeconds.toFixed(2)),
        open_p50_ms: Number(percentile(opened, 50).toFixed(1)),
        open_p99_ms: Number(percentile(opened, 99).toFixed(1)),
        echo_p50_ms: Number(percentile(echoes, 50).toFixed(1)),
        echo_p99_ms: Number(percentile(echoes, 99).toFixed(1)),
      });
    } finally {
      await preview.stop();
    }
    return rows;
  },
};
