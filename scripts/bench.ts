// npm run bench [-- --db pglite|postgres] [--only health,api,agents,pipeline,preview] [--requests N] [--concurrency C]
// Drives the real Worker under `wrangler dev` against the local database and reports latency, throughput and
// database round trips per request (counted by the local database server). Not part of `npm test`.
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { defaultTestBackend, type BackendKind } from "./local-db/index.ts";
import { startBenchTarget } from "./bench/harness.ts";
import { apiScenario } from "./bench/scenarios/api.ts";
import { healthScenario } from "./bench/scenarios/health.ts";
import { pipelineScenario, startPipelineFakes } from "./bench/scenarios/pipeline.ts";
import { agentsScenario } from "./bench/scenarios/agents.ts";
import { previewScenario } from "./bench/scenarios/preview.ts";
import { LOCAL_PREVIEW_DOMAIN } from "./lib/local-preview.ts";
import type { BenchScenario } from "./bench/types.ts";
import { GITHUB_APP_ID, GITHUB_WEBHOOK_SECRET, githubAppPrivateKey } from "../test/fakes/github.ts";

const scenarios: BenchScenario[] = [healthScenario, apiScenario, agentsScenario, previewScenario];

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
const only = values.only?.split(",");
const log = (line: string) => console.log(`[bench] ${line}`);

const fakes = await startPipelineFakes();
const target = await startBenchTarget({
  backend,
  apiPort: Number(values.port),
  log,
  vars: {
    GITHUB_API_URL: fakes.githubUrl,
    GITHUB_APP_ID: GITHUB_APP_ID,
    GITHUB_APP_PRIVATE_KEY: githubAppPrivateKey(),
    GITHUB_WEBHOOK_SECRET: GITHUB_WEBHOOK_SECRET,
    PREVIEW_DOMAIN: LOCAL_PREVIEW_DOMAIN,
  },
});
scenarios.push(pipelineScenario(fakes, Number(values.prs)));
// Interrupted: stop wrangler dev, the throwaway database and the fakes too.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping ...`);
    void Promise.allSettled([target.stop(), fakes.stop()]).then(() => process.exit(130));
  });
}
try {
  for (const scenario of scenarios.filter((s) => !only || only.includes(s.name))) {
    log(`scenario ${scenario.name}`);
    const rows = await scenario.run({ target, total: Number(values.requests), concurrency: Number(values.concurrency), log });
    console.table(rows);
  }
} finally {
  await target.stop();
  await fakes.stop();
}

log("building the deploy bundle (wrangler deploy --dry-run) ...");
const output = execFileSync("npx", ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", "dist"], {
  encoding: "utf8",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
const size = /Total Upload: ([\d.]+ KiB) \/ gzip: ([\d.]+ KiB)/.exec(output);
console.log(size ? `bundle: ${size[1]} (gzip ${size[2]})` : output);
console.log(`database backend: ${backend}; machine: ${cpus().length} cores`);
