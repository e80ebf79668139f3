import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { buildAssets } from "./scripts/build/assets.ts";
import { GITHUB_APP_ID, GITHUB_APP_SLUG, GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, GITHUB_WEBHOOK_SECRET, githubAppPrivateKey } from "./scripts/local-github/github.ts";

// The Worker's static assets (wrangler.toml [assets]) must exist before its runtime starts.
await buildAssets();

// A fixed key for tests only; production keys come from `wrangler secret put ENCRYPTION_KEY`.
const TEST_ENCRYPTION_KEY = "7f".repeat(32);

/** Tests that run in Node rather than workerd: the agent, scripts, the dashboard's pure modules, and system tests that drive real processes. */
const nodeTests = ["agent/**/*.test.ts", "scripts/**/*.test.ts", "dashboard/**/*.test.ts", "test/system/**/*.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        plugins: [
          // Evaluated for every test file's runtime: each gets a fresh database cloned from the migrated template.
          cloudflareTest(async ({ inject }) => {
            const localDbUrl = inject("localDbUrl");
            const response = await fetch(`${localDbUrl}/_stagely/databases`, {
              method: "POST",
              body: JSON.stringify({ template: "stagely_template" }),
            });
            if (!response.ok) throw new Error(`could not create a test database: ${await response.text()}`);
            const { name } = (await response.json()) as { name: string };
            const port = new URL(localDbUrl).port;
            const fakes = JSON.parse(inject("fakeUrls")) as Record<string, string>;
            return {
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                // Deliver queue messages at once instead of batching for a second.
                queueConsumers: { "stagely-jobs": { maxBatchTimeout: 0 }, "stagely-jobs-dlq": { maxBatchTimeout: 0 } },
                bindings: {
                  STAGELY_ENV: "test",
                  PUBLIC_URL: "https://stagely.test",
                  LOG_LEVEL: "warn",
                  DATABASE_URL: `postgres://stagely:local@127.0.0.1:${port}/${name}`,
                  ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
                  TEST_LOCAL_DB_URL: localDbUrl,
                  TEST_DATABASE_NAME: name,
                  TEST_FAKE_URLS: inject("fakeUrls"),
                  // test/e2e/chaos.test.ts: replay a seed, or run more scenarios.
                  CHAOS_SEED: process.env.CHAOS_SEED ?? "",
                  CHAOS_SCENARIOS: process.env.CHAOS_SCENARIOS ?? "",
                  GITHUB_CLIENT_ID: GITHUB_CLIENT_ID,
                  GITHUB_CLIENT_SECRET: GITHUB_CLIENT_SECRET,
                  GITHUB_WEB_URL: fakes.github!,
                  GITHUB_API_URL: fakes.github!,
                  GITHUB_APP_ID: GITHUB_APP_ID,
                  GITHUB_APP_SLUG: GITHUB_APP_SLUG,
                  GITHUB_APP_PRIVATE_KEY: githubAppPrivateKey(),
                  GITHUB_WEBHOOK_SECRET: GITHUB_WEBHOOK_SECRET,
                  // Small enough for test/agents/log-limits.test.ts to reach, above what any other test stores per job.
                  MAX_LOG_LINES_PER_JOB: "5000",
                  MAX_LOG_BYTES_PER_JOB: String(1024 * 1024),
                  // test/preview: a never-answering app gets its 504 in 10 s, and the exchange limit is reachable.
                  PREVIEW_RESPONSE_TIMEOUT_SECONDS: "10",
                  PREVIEW_MAX_EXCHANGES: "60",
                },
              },
            };
          }),
        ],
        // The development routes (/v1/dev/*), which wrangler.toml [define] leaves out of deployed bundles.
        define: { STAGELY_DEV_ROUTES: "true" },
        test: {
          name: "workers",
          globalSetup: ["./test/global-setup.ts"],
          include: ["src/**/*.test.ts", "test/**/*.test.ts"],
          exclude: nodeTests,
        },
      },
      {
        extends: true,
        test: {
          name: "node",
          environment: "node",
          include: nodeTests,
        },
      },
    ],
  },
});
