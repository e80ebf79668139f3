import { describe, expect, it } from "vitest";
import { getSql } from "../../src/db/client.ts";
import { applyMigrations, parseMigration } from "../../src/db/migrate.ts";
import { createEmptyDatabase } from "../db.ts";
import { repositoryMigrations } from "../migrations.ts";

const tables = async (url: string) =>
  ((await getSql(url).query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")) as {
    table_name: string;
  }[]).map((r) => r.table_name);

const bookkeeping = async (url: string) =>
  (await getSql(url).query("SELECT hash, created_at FROM drizzle.__drizzle_migrations ORDER BY id")) as { hash: string; created_at: string }[];

describe("applyMigrations", () => {
  it("creates the whole schema on an empty database, then re-running changes nothing", async () => {
    const url = await createEmptyDatabase();
    const migrations = await repositoryMigrations();
    const progress: string[] = [];
    const first = await applyMigrations(getSql(url), migrations, (p) => progress.push(`${p.index}/${p.total} ${p.state}`));
    expect(first.applied).toEqual(migrations.map((m) => m.tag));
    expect(progress).toEqual(migrations.map((_, i) => `${i + 1}/${migrations.length} applied`));
    expect(await tables(url)).toEqual([
      "agent_connections", "api_tokens", "audit_logs", "build_jobs", "build_logs", "cloud_providers", "environments",
      "github_installation_repositories", "github_installations", "preview_share_tokens", "project_registries", "projects", "pull_requests", "secrets", "team_invitations", "team_members", "teams", "users", "webhook_deliveries", "workflow_runs",
    ]);
    // drizzle's own bookkeeping format: sha256 of the file and the journal's `when`
    expect(await bookkeeping(url)).toEqual(migrations.map((m) => ({ hash: m.hash, created_at: String(m.when) })));

    const again = await applyMigrations(getSql(url), migrations);
    expect(again.applied).toEqual([]);
    expect(await bookkeeping(url)).toHaveLength(migrations.length);
  });

  it("leaves nothing of a failing migration behind and reports which one failed", async () => {
    const url = await createEmptyDatabase();
    const good = await parseMigration("0000_good", 1, "CREATE TABLE kept (id int);");
    const bad = await parseMigration(
      "0001_bad",
      2,
      "CREATE TABLE half_done (id int);\n--> statement-breakpoint\nINSERT INTO kept VALUES (1);\n--> statement-breakpoint\nALTER TABLE nope ADD COLUMN x int;",
    );
    await expect(applyMigrations(getSql(url), [good, bad])).rejects.toThrow(/migration 0001_bad failed and was rolled back: relation "nope" does not exist/);
    expect(await tables(url)).toEqual(["kept"]);
    expect(await getSql(url).query("SELECT count(*)::int AS n FROM kept")).toEqual([{ n: 0 }]);
    expect(await bookkeeping(url)).toEqual([{ hash: good.hash, created_at: "1" }]);
  });

  it("applies each migration once when two migrators run at the same time", async () => {
    const url = await createEmptyDatabase();
    const migrations = await repositoryMigrations();
    const results = await Promise.all([applyMigrations(getSql(url), migrations), applyMigrations(getSql(url), migrations)]);
    expect([...results[0].applied, ...results[1].applied].sort()).toEqual(migrations.map((m) => m.tag).sort());
    expect(await bookkeeping(url)).toHaveLength(migrations.length);
  });

  it("runs a file marked no-transaction statement by statement", async () => {
    const url = await createEmptyDatabase();
    const setup = await parseMigration("0000_table", 1, "CREATE TABLE t (id int);");
    const concurrent = await parseMigration("0001_index", 2, "-- stagely:no-transaction\nCREATE INDEX CONCURRENTLY t_id_idx ON t (id);");
    expect(concurrent.transactional).toBe(false);
    await applyMigrations(getSql(url), [setup, concurrent]);
    expect(await getSql(url).query("SELECT indexname FROM pg_indexes WHERE tablename = 't'")).toEqual([{ indexname: "t_id_idx" }]);
  });
});
