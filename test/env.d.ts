// Bindings vitest.config.ts adds for tests only.
interface Env {
  TEST_LOCAL_DB_URL: string;
  TEST_DATABASE_NAME: string;
}
