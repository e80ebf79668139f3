import * as z from "zod";

const hexKey = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex characters (a 32-byte AES-256 key)");

const keyId = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "must be 1-32 characters of A-Z a-z 0-9 _ -");

const oldKeys = z
  .string()
  .transform((value, ctx) => {
    const keys: { id: string; hex: string }[] = [];
    for (const [index, entry] of value.split(",").map((e) => e.trim()).filter(Boolean).entries()) {
      const [id = "", hex = ""] = entry.split(":");
      if (!keyId.safeParse(id).success || !hexKey.safeParse(hex).success) {
        ctx.addIssue({ code: "custom", message: `entry ${index + 1} must look like id:<64 hex characters>` });
        return z.NEVER;
      }
      keys.push({ id, hex });
    }
    return keys;
  });

const databaseUrl = z
  .string()
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "postgres:" || url.protocol === "postgresql:") && url.hostname !== "" && url.pathname.length > 1;
    } catch {
      return false;
    }
  }, "must be a postgres:// URL with a host and a database name");

const httpUrl = z
  .string()
  .refine((value) => /^https?:\/\/[^\s/]+/.test(value) && URL.canParse(value), "must be an http(s) URL")
  .transform((value) => value.replace(/\/+$/, ""));

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === "" ? undefined : value));

const count = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const configSchema = z.object({
  STAGELY_ENV: z.enum(["development", "test", "production"]).default("production"),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  DATABASE_URL: databaseUrl,
  ENCRYPTION_KEY: hexKey,
  ENCRYPTION_KEY_ID: keyId.default("k1"),
  ENCRYPTION_OLD_KEYS: oldKeys.default([]),
  /**
   * Refuse values in the Go core's legacy format (no key id, no associated data). Turn on once
   * `npm run secrets:rotate` reports none left.
   */
  ENCRYPTION_REFUSE_LEGACY: z
    .enum(["true", "false", ""], { message: 'must be "true" or "false"' })
    .default("false")
    .transform((value) => value === "true"),
  /** Where users and agents reach this API (agents dial `<PUBLIC_URL>/v1/agent/connect`). */
  PUBLIC_URL: httpUrl.default("http://127.0.0.1:8787"),
  /** Previews are served at https://<subdomain_hash>.<PREVIEW_DOMAIN>. */
  PREVIEW_DOMAIN: z.string().regex(/^[a-z0-9.-]+$/, "must be a DNS name").default("preview.localhost"),
  /** A preview request the app does not answer (response headers) within this long gets 504. */
  PREVIEW_RESPONSE_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(600).default(100),
  /** Exchanges (requests and WebSockets) one preview serves at once; more get 503. */
  PREVIEW_MAX_EXCHANGES: z.coerce.number().int().min(1).max(10_000).default(256),
  /** The GitHub App's OAuth client (sign-in, and who installed the App). Base URLs are configurable so tests and GitHub Enterprise work. */
  GITHUB_CLIENT_ID: optionalText,
  GITHUB_CLIENT_SECRET: optionalText,
  GITHUB_WEB_URL: httpUrl.default("https://github.com"),
  GITHUB_API_URL: httpUrl.default("https://api.github.com"),
  /** GitHub App (webhooks, repository contents, clone tokens, deployments). */
  GITHUB_APP_ID: optionalText,
  /** The App's URL name (`https://github.com/apps/<slug>`), for the install link. */
  GITHUB_APP_SLUG: z
    .string()
    .optional()
    .transform((value) => (value === "" ? undefined : value))
    .pipe(z.string().regex(/^[a-z0-9][a-z0-9-]{0,99}$/, "must be the App's slug (lowercase letters, digits, dashes)").optional()),
  GITHUB_APP_PRIVATE_KEY: optionalText,
  GITHUB_WEBHOOK_SECRET: optionalText,
  /** A build job whose log grows beyond either limit is failed and its agent stopped. */
  MAX_LOG_LINES_PER_JOB: count(200_000),
  MAX_LOG_BYTES_PER_JOB: count(50 * 1024 * 1024),
  /** Live log streams (`/v1/jobs/:id/logs/stream`) one user may have open at once. */
  MAX_LIVE_LOG_STREAMS_PER_USER: count(10),
  /** Connects an agent may make per minute (a burst of as many, then one every 60/n s); more get 429. */
  AGENT_CONNECTS_PER_MINUTE: count(10),
  /** The reaper deletes build logs of jobs finished longer ago, audit rows and webhook delivery ids older than this. */
  BUILD_LOG_RETENTION_DAYS: count(30),
  AUDIT_LOG_RETENTION_DAYS: count(365),
  /** At least 3: GitHub lets a delivery be redelivered for 3 days, and a redelivery must still be recognised. */
  WEBHOOK_DELIVERY_RETENTION_DAYS: z.coerce.number().int().min(3, "must be at least 3 (GitHub redelivers for 3 days)").default(7),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Validates bindings and vars. Error messages name the variable and the rule, never the value. */
export function parseConfig(source: Record<string, unknown>): Config {
  const result = configSchema.safeParse(source);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join(".") || "(root)";
    const missing = issue.code === "invalid_type" && source[String(issue.path[0])] === undefined;
    return missing ? `${name} is required` : `${name} ${issue.message}`;
  });
  throw new ConfigError(problems);
}

const cache = new WeakMap<object, Config>();

/** The parsed config for a Worker env, validated once per isolate on first use. */
export function getConfig(env: object): Config {
  let config = cache.get(env);
  if (!config) {
    config = parseConfig(env as Record<string, unknown>);
    cache.set(env, config);
  }
  return config;
}
