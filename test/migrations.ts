import { parseMigration, type Migration } from "../src/db/migrate.ts";
import journal from "../migrations/meta/_journal.json";

const files = import.meta.glob<string>("../migrations/*.sql", { query: "?raw", import: "default", eager: true });

/** The repository's migrations as the runner sees them (test code cannot read the disk inside workerd). */
export function repositoryMigrations(): Promise<Migration[]> {
  return Promise.all(
    journal.entries.map((entry) => {
      const content = files[`../migrations/${entry.tag}.sql`];
      if (content === undefined) throw new Error(`migrations/${entry.tag}.sql is missing`);
      return parseMigration(entry.tag, entry.when, content);
    }),
  );
}
