import { getConfig, type Config } from "../config.ts";
import { getDb, type Db } from "../db/client.ts";
import { keyringFromConfig, type Keyring } from "../lib/crypto.ts";
import { Logger } from "../lib/logger.ts";
import { githubAppFromConfig, type GitHubApp } from "./github-app.ts";
import type { PipelineMessage } from "./messages.ts";

/** What every pipeline step needs, built once per queue batch or cron tick. */
export interface PipelineContext {
  env: Env;
  config: Config;
  db: Db;
  keyring: Keyring;
  logger: Logger;
  /** The GitHub App, or null when it is not configured (previews still work; nothing is reported to GitHub). */
  github: GitHubApp | null;
  /** `delaySeconds`: delivered no sooner than that (a fallback that is a no-op if the work was done meanwhile). */
  send(messages: PipelineMessage[], options?: { delaySeconds?: number }): Promise<void>;
}

export async function pipelineContext(env: Env, logger: Logger): Promise<PipelineContext> {
  const config = getConfig(env);
  return {
    env,
    config,
    db: getDb(config.DATABASE_URL),
    keyring: await keyringFromConfig(config),
    logger,
    github: config.GITHUB_APP_ID && config.GITHUB_APP_PRIVATE_KEY ? githubAppFromConfig(config) : null,
    async send(messages, options) {
      if (messages.length > 0) await env.JOBS.sendBatch(messages.map((body) => ({ body, delaySeconds: options?.delaySeconds })));
    },
  };
}
