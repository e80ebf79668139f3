// npm run bench [-- --db pglite|postgres] [--only health,api,agents,agent,pipeline,preview] [--requests N] [--concurrency C]
// Drives the real Worker under `wrangler dev` against the local database and reports latency, throughput and
// database round trips per request (counted by the local database server). Not part of `npm test`.
// Every result row is printed twice: in the scenario's table, and as one JSON line on stdout starting with `{`
// (`{"scenario": ..., "group": ..., ...figures, "load_1m": ...}`), so runs can be compared by a script.
import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { defaultTestBackend, type BackendKind } from "./local-db/index.ts";
import { startStack } from "./lib/stack.ts";
import { apiScenario } from "./bench/scenarios/api.ts";
import { healthScenario } from "./bench/scenarios/health.ts";
import { pipelineScenario, recordingSimulator } from "./bench/scenarios/pipeline.ts";
import { agentScenario } from "./bench/scenarios/agent.ts";
import { agentsScenario } from "./bench/scenarios/agents.ts";
import { previewScenario } from "./bench/scenarios/preview.ts";
import type { BenchScenario } from "./bench/types.ts";

const scenarios: BenchScenario[] = [healthScenario, apiScenario, agentsScenario, agentScenario, previewScenario];

const { values } = parseArgs({
  options: {
    db: { type: "string" },
    only: { type: "string" },
    requests: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    port: { type: "string", default: "8799" },
    prs: { type: "string", default: "100" },
  },
});
const backend = (values.db ?? defaultTestBackend()) as BackendKind;
// wrangler dev records a trace of every event into a local SQLite store by default, in the same workerd process as
// the Worker: a cost deployed Workers do not pay in their isolate (about half the CPU of log ingestion). Off unless
// X_LOCAL_OBSERVABILITY=true is set, to measure with it.
process.env.X_LOCAL_OBSERVABILITY ??= "false";
const only = values.only?.split(",");
const log = (line: string) => console.log(`[bench] ${line}`);

const buildReceived = new Map<string, number>();
const target = await startStack({
  backend,
  apiPort: Number(values.port),
  log,
  cloud: { startAgent: recordingSimulator(buildReceived) },
});
scenarios.push(pipelineScenario(buildReceived, Number(values.prs)));
// Interrupted: stop wrangler dev, the throwaway database and the fakes too.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping ...`);
    void target.stop().then(() => process.exit(130));
  });
}
try {
  for (const scenario of scenarios.filter((s) => !only || only.includes(s.name))) {
    log(`scenario ${scenario.name}`);
    const rows = await scenario.run({ target, total: Number(values.requests), concurrency: Number(values.concurrency), log });
    console.table(rows);
    for (const row of rows) console.log(JSON.stringify({ scenario: row.scenario, group: scenario.name, ...row, load_1m: Number(loadavg()[0]!.toFixed(2)) }));
  }
} finally {
  await target.stop();
}

log("building the deploy bundle (wrangler deploy --dry-run) ...");
const output = execFileSync("npx", ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", "dist"], {
  encoding: "utf8",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
const size = /Total Upload: ([\d.]+ KiB) \/ gzip: ([\d.]+ KiB)/.exec(output);
console.log(size ? `bundle: ${size[1]} (gzip ${size[2]})` : output);
console.log(`database backend: ${backend}; machine: ${cpus().length} cores; wrangler dev local observability: ${process.env.X_LOCAL_OBSERVABILITY}`);
