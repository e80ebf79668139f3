// npm run bench [-- --db pglite|postgres] [--requests N] [--concurrency C]
// Drives the real Worker under `wrangler dev` against the local database and reports latency, throughput and
// database round trips per request (counted by the local database server). Not part of `npm test`.
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { defaultTestBackend, type BackendKind } from "./local-db/index.ts";
import { startBenchTarget } from "./bench/harness.ts";
import { runLoad } from "./bench/load.ts";

const { values } = parseArgs({
  options: {
    db: { type: "string" },
    requests: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    port: { type: "string", default: "8799" },
  },
});
const backend = (values.db ?? defaultTestBackend()) as BackendKind;
const total = Number(values.requests);
const concurrency = Number(values.concurrency);
const log = (line: string) => console.log(`[bench] ${line}`);

const target = await startBenchTarget({ backend, apiPort: Number(values.port), log });
const rows: Record<string, unknown>[] = [];
try {
  const scenarios = [
    { name: "GET /health", path: "/health" },
    { name: "GET /ready", path: "/ready" },
  ];
  for (const scenario of scenarios) {
    log(`${scenario.name}: warming up, then ${total} requests at concurrency ${concurrency} ...`);
    await runLoad({ total: 100, concurrency, makeRequest: () => fetch(`${target.apiUrl}${scenario.path}`) });
    await target.resetDbStats();
    const result = await runLoad({ total, concurrency, makeRequest: () => fetch(`${target.apiUrl}${scenario.path}`) });
    const stats = await target.dbStats();
    rows.push({ scenario: scenario.name, ...result, db_round_trips_per_request: Number((stats.round_trips / total).toFixed(2)) });
  }
} finally {
  await target.stop();
}
console.table(rows);

log("building the deploy bundle (wrangler deploy --dry-run) ...");
const output = execFileSync("npx", ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", "dist"], {
  encoding: "utf8",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
const size = /Total Upload: ([\d.]+ KiB) \/ gzip: ([\d.]+ KiB)/.exec(output);
console.log(size ? `bundle: ${size[1]} (gzip ${size[2]})` : output);
console.log(`database backend: ${backend}; machine: ${(await import("node:os")).cpus().length} cores`);
