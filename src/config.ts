import { z } from "zod";

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

export const configSchema = z.object({
  STAGELY_ENV: z.enum(["development", "test", "production"]).default("production"),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  DATABASE_URL: databaseUrl,
  ENCRYPTION_KEY: hexKey,
  ENCRYPTION_KEY_ID: keyId.default("k1"),
  ENCRYPTION_OLD_KEYS: oldKeys.default([]),
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
