import { neon, neonConfig, type NeonQueryFunction } from "@neondatabase/serverless";
import { drizzle, type NeonHttpDatabase } from "drizzle-orm/neon-http";
import * as schema from "./schema.ts";

export type Db = NeonHttpDatabase<typeof schema>;
export type Sql = NeonQueryFunction<false, false>;

/** Port the local Neon-protocol server listens on when a local DATABASE_URL names none. */
export const LOCAL_DB_DEFAULT_PORT = 5488;

export function isLocalHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || host.startsWith("127.") || host.endsWith(".localhost");
}

// Production hosts go to Neon's endpoint (the driver's default); a local host goes to scripts/local-db over plain HTTP.
const neonEndpoint = neonConfig.fetchEndpoint;
neonConfig.fetchEndpoint = (host, port, options) => {
  if (isLocalHost(host)) return `http://${host}:${port || LOCAL_DB_DEFAULT_PORT}/sql`;
  return typeof neonEndpoint === "function" ? neonEndpoint(host, port, options) : neonEndpoint;
};

const clients = new Map<string, { sql: Sql; db: Db }>();

function connect(databaseUrl: string) {
  let client = clients.get(databaseUrl);
  if (!client) {
    const sql = neon(databaseUrl);
    client = { sql, db: drizzle({ client: sql, schema }) };
    clients.set(databaseUrl, client);
  }
  return client;
}

/** The drizzle client: the one way the app reaches Postgres (Neon's HTTP protocol, one round trip per query or batch). */
export function getDb(databaseUrl: string): Db {
  return connect(databaseUrl).db;
}

/** The raw Neon query function for the same database, for migrations and tooling. */
export function getSql(databaseUrl: string): Sql {
  return connect(databaseUrl).sql;
}

/** Neon errors arrive bare from batches and wrapped by drizzle (`DrizzleQueryError`) from single queries. */
export function databaseErrorOf(error: unknown): { code?: string; constraint?: string; message: string } | undefined {
  const inner = (error as { cause?: unknown })?.cause ?? error;
  if (inner && typeof inner === "object" && (inner as { name?: string }).name === "NeonDbError") {
    return inner as { code?: string; constraint?: string; message: string };
  }
  return undefined;
}
