import { sha256Hex } from "../lib/crypto.ts";
import { databaseErrorOf, type Sql } from "./client.ts";

/**
 * Applies drizzle-kit migrations over Neon's HTTP protocol. Each file and its bookkeeping row go in one batch
 * transaction, so a failing migration leaves nothing behind; a file whose first line is
 * `-- stagely:no-transaction` (CREATE INDEX CONCURRENTLY and the like) runs statement by statement instead.
 * Bookkeeping uses drizzle's own table and format (sha256 of the file, the journal's `when`).
 */

export interface Migration {
  tag: string;
  when: number;
  hash: string;
  statements: string[];
  transactional: boolean;
}

const NO_TRANSACTION = "-- stagely:no-transaction";
const BOOKKEEPING_TABLE = "drizzle.__drizzle_migrations";
const LOCK = "SELECT pg_advisory_xact_lock(7215550641)";

export async function parseMigration(tag: string, when: number, content: string): Promise<Migration> {
  const statements = content
    .split("--> statement-breakpoint")
    .map((s) => s.trim())
    .filter((s) => s.replace(/^--.*$/gm, "").trim() !== "");
  return {
    tag,
    when,
    hash: await sha256Hex(content),
    statements,
    transactional: !content.trimStart().startsWith(NO_TRANSACTION),
  };
}

export interface MigrationProgress {
  tag: string;
  state: "applied" | "skipped";
  index: number;
  total: number;
}

export async function applyMigrations(
  sql: Sql,
  migrations: Migration[],
  onProgress: (progress: MigrationProgress) => void = () => {},
): Promise<{ applied: string[] }> {
  await sql.transaction([
    sql.query(LOCK),
    sql.query("CREATE SCHEMA IF NOT EXISTS drizzle"),
    sql.query(`CREATE TABLE IF NOT EXISTS ${BOOKKEEPING_TABLE} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`),
    sql.query(`CREATE UNIQUE INDEX IF NOT EXISTS __drizzle_migrations_hash_key ON ${BOOKKEEPING_TABLE} (hash)`),
  ]);
  const rows = (await sql.query(`SELECT hash FROM ${BOOKKEEPING_TABLE}`)) as { hash: string }[];
  const done = new Set(rows.map((r) => r.hash));
  const applied: string[] = [];

  for (const [index, migration] of migrations.entries()) {
    const progress = { tag: migration.tag, index: index + 1, total: migrations.length };
    if (done.has(migration.hash)) {
      onProgress({ ...progress, state: "skipped" });
      continue;
    }
    // The bookkeeping row goes first: if another migrator applied this file meanwhile, its unique hash fails the
    // batch before any statement runs, and we skip the file.
    const record = sql.query(`INSERT INTO ${BOOKKEEPING_TABLE} (hash, created_at) VALUES ($1, $2)`, [migration.hash, migration.when]);
    try {
      if (migration.transactional) {
        await sql.transaction([sql.query(LOCK), record, ...migration.statements.map((s) => sql.query(s))]);
      } else {
        for (const statement of migration.statements) await sql.query(statement);
        await record;
      }
    } catch (error) {
      const dbError = databaseErrorOf(error);
      if (dbError?.code === "23505" && dbError.constraint === "__drizzle_migrations_hash_key") {
        onProgress({ ...progress, state: "skipped" });
        continue;
      }
      throw new Error(`migration ${migration.tag} failed and was rolled back: ${dbError?.message ?? String(error)}`, { cause: error });
    }
    applied.push(migration.tag);
    onProgress({ ...progress, state: "applied" });
  }
  return { applied };
}
