import type { Backend } from "./backend.ts";
import { PgBackend } from "./pg-backend.ts";
import { PgliteBackend } from "./pglite-backend.ts";
import { findPostgresBinDir, startPostgresCluster, type PostgresCluster } from "./postgres-cluster.ts";
import { startLocalDbServer, type LocalDbServer } from "./server.ts";

export type BackendKind = "pglite" | "postgres";

export interface LocalDatabaseOptions {
  backend: BackendKind;
  port?: number;
  /** PGlite: where databases persist (in memory when absent). */
  dataDir?: string;
  /** postgres: an existing server to use; without it a throwaway one is started from the local binaries. */
  postgresUrl?: string;
  onError?: (error: unknown) => void;
}

export interface LocalDatabase {
  server: LocalDbServer;
  /** A DATABASE_URL for the app that reaches `database` through the protocol server. */
  databaseUrl(database: string): string;
  stop(): Promise<void>;
}

export async function startLocalDatabase(options: LocalDatabaseOptions): Promise<LocalDatabase> {
  let cluster: PostgresCluster | undefined;
  let backend: Backend;
  if (options.backend === "postgres") {
    let url = options.postgresUrl;
    if (!url) {
      const binDir = findPostgresBinDir();
      if (!binDir) throw new Error("no PostgreSQL binaries found (looked in /usr/lib/postgresql/*/bin; set PG_BIN_DIR)");
      cluster = await startPostgresCluster(binDir);
      url = cluster.url;
    }
    backend = new PgBackend(url);
  } else {
    backend = new PgliteBackend(options.dataDir);
  }
  const server = await startLocalDbServer({ backend, port: options.port, onError: options.onError });
  return {
    server,
    databaseUrl: (database) => `postgres://stagely:local@127.0.0.1:${server.port}/${database}`,
    async stop() {
      await server.close();
      await cluster?.stop();
    },
  };
}

/** Tests default to a real PostgreSQL when its binaries are installed, PGlite otherwise; STAGELY_TEST_DB overrides. */
export function defaultTestBackend(): BackendKind {
  const chosen = process.env.STAGELY_TEST_DB;
  if (chosen === "pglite" || chosen === "postgres") return chosen;
  return findPostgresBinDir() ? "postgres" : "pglite";
}
