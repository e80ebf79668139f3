import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { randomHex } from "../../src/lib/crypto.ts";
import { generateToken } from "../../src/auth/tokens.ts";
import { getDb, getSql } from "../../src/db/client.ts";
import { apiTokens, users } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { applyMigrations } from "../../src/db/migrate.ts";
import { loadMigrations } from "../lib/migration-files.ts";
import { startLocalDatabase, type BackendKind, type LocalDatabase } from "../local-db/index.ts";

const root = join(import.meta.dirname, "..", "..");

/** A local database plus the real Worker under `wrangler dev`, wired together, for benchmarks. */
export interface BenchTarget {
  apiUrl: string;
  /** An API token of a bench user (the development routes, /v1/dev/*, require one). */
  apiToken: string;
  database: string;
  local: LocalDatabase;
  /** Round trips and statements the database server answered for the bench database since the last reset. */
  dbStats(): Promise<{ round_trips: number; statements: number }>;
  resetDbStats(): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchTarget(options: {
  backend: BackendKind;
  apiPort: number;
  log: (line: string) => void;
  /** More Worker vars (e.g. fake GitHub URLs for the pipeline scenario). */
  vars?: Record<string, string>;
}): Promise<BenchTarget> {
  options.log(`starting the local database (${options.backend}) ...`);
  const local = await startLocalDatabase({ backend: options.backend });
  const database = "stagely_bench";
  await local.server.backend.createDatabase(database);
  await applyMigrations(getSql(local.databaseUrl(database)), await loadMigrations());
  const db = getDb(local.databaseUrl(database));
  const userId = newId("user");
  const apiToken = await generateToken("api");
  await db.batch([
    db.insert(users).values({ id: userId, email: `${userId}@bench.test`, name: "Bench" }),
    db.insert(apiTokens).values({ id: newId("token"), userId, kind: "api", name: "bench", tokenHash: apiToken.hash, tokenHint: apiToken.hint }),
  ]);

  options.log(`starting wrangler dev on port ${options.apiPort} ...`);
  const vars = {
    STAGELY_ENV: "development",
    LOG_LEVEL: "warn",
    DATABASE_URL: local.databaseUrl(database),
    ENCRYPTION_KEY: randomHex(32),
    PUBLIC_URL: `http://127.0.0.1:${options.apiPort}`,
    ...options.vars,
  };
  const wrangler: ChildProcess = spawn(
    "npx",
    ["--no-install", "wrangler", "dev", "--ip", "127.0.0.1", "--port", String(options.apiPort), "--env-file", "/dev/null", "--define", "STAGELY_DEV_ROUTES:true",
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])],
    { cwd: root, stdio: "ignore", detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
  );
  const apiUrl = `http://127.0.0.1:${options.apiPort}`;
  const stop = async () => {
    try {
      process.kill(-wrangler.pid!, "SIGTERM");
    } catch {
      // already gone
    }
    await local.stop();
  };
  const deadline = Date.now() + 60_000;
  while (!(await fetch(`${apiUrl}/ready`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline || wrangler.exitCode !== null) {
      await stop();
      throw new Error("wrangler dev did not become ready within 60 s; run `npm run dev` to see its output");
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const statsUrl = `${local.server.url}/_stagely/stats?database=${database}`;
  return {
    apiUrl,
    apiToken: apiToken.token,
    database,
    local,
    dbStats: async () => (await (await fetch(statsUrl)).json()) as { round_trips: number; statements: number },
    resetDbStats: async () => void (await fetch(`${local.server.url}/_stagely/stats/reset`, { method: "POST" })),
    stop,
  };
}
