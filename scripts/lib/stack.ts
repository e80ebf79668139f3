import { spawn, type ChildProcess } from "node:child_process";
import type { Server } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { generateToken } from "../../src/auth/tokens.ts";
import { getDb, getSql, type Db } from "../../src/db/client.ts";
import { applyMigrations } from "../../src/db/migrate.ts";
import { apiTokens, users } from "../../src/db/schema.ts";
import { randomHex } from "../../src/lib/crypto.ts";
import { newId } from "../../src/lib/ids.ts";
import { GITHUB_APP_ID, GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, GITHUB_WEBHOOK_SECRET, githubAppPrivateKey, githubFake } from "../local-github/github.ts";
import { startLocalCloud, type StartAgent } from "../local-cloud/server.ts";
import { startLocalDatabase, type BackendKind, type LocalDatabase } from "../local-db/index.ts";
import { LOCAL_PREVIEW_DOMAIN } from "./local-preview.ts";
import { loadMigrations } from "./migration-files.ts";

const root = join(import.meta.dirname, "..", "..");

/**
 * The whole control plane on this machine, as separate processes talk to it: a local database, the fake GitHub App,
 * the local cloud, and the real Worker under `wrangler dev` wired to them. Used by the benchmarks and by the node
 * project's system tests (real agents, Docker, a browser).
 */
export interface Stack {
  apiUrl: string;
  apiPort: number;
  /** An API token of a user of the stack's own (the development routes, /v1/dev/*, require one). */
  apiToken: string;
  database: string;
  db: Db;
  local: LocalDatabase;
  /** The fake GitHub (App, and OAuth for sign-in) the Worker is configured with (null when started without it). */
  githubUrl: string | null;
  /** The local cloud (`provider_type: local`, `config.endpoint`), null when started without it. */
  localCloudUrl: string | null;
  /** Round trips and statements the database server answered for the stack's database since the last reset. */
  dbStats(): Promise<{ round_trips: number; statements: number }>;
  resetDbStats(): Promise<void>;
  stop(): Promise<void>;
}

export interface StackOptions {
  backend: BackendKind;
  /** Default: a free port. */
  apiPort?: number;
  log: (line: string) => void;
  /** More Worker vars. */
  vars?: Record<string, string>;
  /** Start the fake GitHub (App and OAuth sign-in) and point the Worker at it (default true). */
  github?: boolean;
  /** Start the local cloud (default: yes, with no boot delay and the agent simulator); false: none. */
  cloud?: { startAgent?: StartAgent | false; bootDelayMs?: number } | false;
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => {});
  };
  try {
    options.log(`starting the local database (${options.backend}) ...`);
    const local = await startLocalDatabase({ backend: options.backend });
    stops.push(() => local.stop());
    const database = "stagely_stack";
    await local.server.backend.createDatabase(database);
    await applyMigrations(getSql(local.databaseUrl(database)), await loadMigrations());
    const db = getDb(local.databaseUrl(database));
    const userId = newId("user");
    const apiToken = await generateToken("api");
    await db.batch([
      db.insert(users).values({ id: userId, email: `${userId}@stack.test`, name: "Stack" }),
      db.insert(apiTokens).values({ id: newId("token"), userId, kind: "api", name: "stack", tokenHash: apiToken.hash, tokenHint: apiToken.hint }),
    ]);

    let githubUrl: string | null = null;
    if (options.github !== false) {
      const github: Server = await githubFake.start();
      stops.push(async () => {
        github.closeAllConnections();
        await new Promise<void>((resolve) => github.close(() => resolve()));
      });
      githubUrl = `http://127.0.0.1:${(github.address() as AddressInfo).port}`;
    }

    let localCloudUrl: string | null = null;
    if (options.cloud !== false) {
      const cloud = await startLocalCloud({ port: 0, bootDelayMs: options.cloud?.bootDelayMs ?? 0, startAgent: options.cloud?.startAgent });
      stops.push(() => cloud.stop());
      localCloudUrl = cloud.url;
    }

    const apiPort = options.apiPort ?? (await freePort());
    options.log(`starting wrangler dev on port ${apiPort} ...`);
    const vars = {
      STAGELY_ENV: "development",
      LOG_LEVEL: "warn",
      DATABASE_URL: local.databaseUrl(database),
      ENCRYPTION_KEY: randomHex(32),
      PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
      PREVIEW_DOMAIN: LOCAL_PREVIEW_DOMAIN,
      ...(githubUrl
        ? {
            GITHUB_API_URL: githubUrl,
            GITHUB_WEB_URL: githubUrl,
            GITHUB_APP_ID: GITHUB_APP_ID,
            GITHUB_APP_PRIVATE_KEY: githubAppPrivateKey(),
            GITHUB_WEBHOOK_SECRET: GITHUB_WEBHOOK_SECRET,
            GITHUB_CLIENT_ID: GITHUB_CLIENT_ID,
            GITHUB_CLIENT_SECRET: GITHUB_CLIENT_SECRET,
          }
        : {}),
      ...options.vars,
    };
    const wrangler: ChildProcess = spawn(
      "npx",
      ["--no-install", "wrangler", "dev", "--ip", "127.0.0.1", "--port", String(apiPort), "--inspector-port", String(await freePort()),
        "--env-file", "/dev/null", "--define", "STAGELY_DEV_ROUTES:true", ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])],
      { cwd: root, stdio: "ignore", detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
    );
    stops.push(async () => {
      try {
        process.kill(-wrangler.pid!, "SIGTERM");
      } catch {
        // already gone
      }
    });
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const deadline = Date.now() + 60_000;
    while (!(await fetch(`${apiUrl}/ready`).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline || wrangler.exitCode !== null) {
        throw new Error("wrangler dev did not become ready within 60 s; run `npm run dev` to see its output");
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const statsUrl = `${local.server.url}/_stagely/stats?database=${database}`;
    return {
      apiUrl,
      apiPort,
      apiToken: apiToken.token,
      database,
      db,
      local,
      githubUrl,
      localCloudUrl,
      dbStats: async () => (await (await fetch(statsUrl)).json()) as { round_trips: number; statements: number },
      resetDbStats: async () => void (await fetch(`${local.server.url}/_stagely/stats/reset`, { method: "POST" })),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
