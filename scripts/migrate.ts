// npm run db:migrate: applies pending migrations to DATABASE_URL (Neon, or the local server of `npm run dev`).
import { getSql } from "../src/db/client.ts";
import { applyMigrations } from "../src/db/migrate.ts";
import { loadMigrations } from "./lib/migration-files.ts";
import { readDevVars } from "./lib/dev-vars.ts";

const databaseUrl = process.env.DATABASE_URL ?? readDevVars().DATABASE_URL;
if (!databaseUrl) {
  console.error("DATABASE_URL is not set. Export it (e.g. your Neon connection string) or run `npm run dev` once to create .dev.vars.");
  process.exit(1);
}
const target = new URL(databaseUrl);
console.log(`Migrating database "${target.pathname.slice(1)}" on ${target.hostname} ...`);
try {
  const { applied } = await applyMigrations(getSql(databaseUrl), await loadMigrations(), (p) =>
    console.log(`  [${p.index}/${p.total}] ${p.tag}: ${p.state === "applied" ? "applied" : "already applied"}`),
  );
  console.log(applied.length ? `Done: ${applied.length} migration(s) applied.` : "Done: the database is up to date.");
} catch (error) {
  console.error(`Migration failed: ${error instanceof Error ? error.message : String(error)}`);
  console.error("Nothing of the failing file was kept. Fix the cause above and run `npm run db:migrate` again.");
  process.exit(1);
}
