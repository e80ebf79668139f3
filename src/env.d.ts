// Secrets set with `wrangler secret put` (or .dev.vars locally); `wrangler types` only sees [vars].
interface StagelySecrets {
  DATABASE_URL: string;
  ENCRYPTION_KEY: string;
  ENCRYPTION_OLD_KEYS?: string;
  GITHUB_CLIENT_SECRET?: string;
  GITHUB_APP_PRIVATE_KEY?: string;
  GITHUB_WEBHOOK_SECRET?: string;
}
interface Env extends StagelySecrets {}
declare namespace Cloudflare {
  interface Env extends StagelySecrets {}
}

/** Build-time constant (wrangler.toml [define], `wrangler dev --define`, vitest.config.ts): mount /v1/dev/* routes. */
declare const STAGELY_DEV_ROUTES: boolean;
