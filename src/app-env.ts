import type { Context } from "hono";
import { getConfig, type Config } from "./config.ts";
import { getDb, type Db } from "./db/client.ts";
import { keyringFromConfig, type Keyring } from "./lib/crypto.ts";
import type { Logger } from "./lib/logger.ts";

/** Hono's typing for this app: Worker bindings plus what middleware puts on the context. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    logger: Logger;
  };
}

export type AppContext = Context<AppEnv>;

/** Validated configuration (parsed once per isolate; a bad value throws ConfigError). */
export function configOf(c: AppContext): Config {
  return getConfig(c.env);
}

export function dbOf(c: AppContext): Db {
  return getDb(configOf(c).DATABASE_URL);
}

export function keyringOf(c: AppContext): Promise<Keyring> {
  return keyringFromConfig(configOf(c));
}
