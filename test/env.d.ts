// Bindings vitest.config.ts adds for tests only.
interface TestBindings {
  TEST_LOCAL_DB_URL: string;
  TEST_DATABASE_NAME: string;
  TEST_FAKE_URLS: string;
  CHAOS_SEED: string;
  CHAOS_SCENARIOS: string;
  PREVIEW_RESPONSE_TIMEOUT_SECONDS: string;
  PREVIEW_MAX_EXCHANGES: string;
}
interface Env extends TestBindings {}
declare namespace Cloudflare {
  interface Env extends TestBindings {}
}
