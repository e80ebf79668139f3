import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseMigration, type Migration } from "../../src/db/migrate.ts";

export const MIGRATIONS_DIR = join(import.meta.dirname, "..", "..", "migrations");

/** The migrations drizzle-kit generated, in journal order. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const journal = JSON.parse(readFileSync(join(dir, "meta", "_journal.json"), "utf8")) as {
    entries: { tag: string; when: number }[];
  };
  return Promise.all(
    journal.entries.map((entry) => parseMigration(entry.tag, entry.when, readFileSync(join(dir, `${entry.tag}.sql`), "utf8"))),
  );
}
