import { eq, sql as dsql } from "drizzle-orm";
import { bigint, boolean, customType, jsonb, numeric, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { beforeAll, describe, expect, it } from "vitest";
import { teams } from "../../src/db/schema.ts";
import { databaseErrorOf } from "../../src/db/client.ts";
import { db, sql } from "../db.ts";

// Protocol fidelity of scripts/local-db, checked through the real drizzle neon-http client the app uses.

const bytea = customType<{ data: Uint8Array; driverData: string }>({
  dataType: () => "bytea",
  toDriver: (value) => `\\x${[...value].map((b) => b.toString(16).padStart(2, "0")).join("")}`,
});

const fidelity = pgTable("fidelity", {
  id: uuid("id").primaryKey(),
  label: text("label"),
  doc: jsonb("doc").$type<Record<string, unknown>>(),
  at: timestamp("at", { withTimezone: true }),
  big: bigint("big", { mode: "bigint" }),
  amount: numeric("amount", { precision: 20, scale: 6 }),
  flag: boolean("flag"),
  tags: text("tags").array(),
  blob: bytea("blob"),
});

async function errorOf(work: Promise<unknown>) {
  try {
    await work;
  } catch (error) {
    return databaseErrorOf(error) as Record<string, unknown> | undefined;
  }
  throw new Error("expected a database error");
}

beforeAll(async () => {
  await sql.query(
    "CREATE TABLE fidelity (id uuid PRIMARY KEY, label text, doc jsonb, at timestamptz, big int8, amount numeric(20,6), flag bool, tags text[], blob bytea)",
  );
});

describe("value round-trips", () => {
  it("keeps every type's value exact", async () => {
    const row = {
      id: "2f1c7e1a-9a4b-4d5e-8f60-0123456789ab",
      label: "naïve 'quoted' \"text\" \\ 🚀",
      doc: { nested: { list: [1, "two", null, true] }, unicode: "ü" },
      at: new Date("2026-11-26T10:20:30.123Z"),
      big: 9_007_199_254_740_993n, // beyond Number.MAX_SAFE_INTEGER
      amount: "12345678901234.123456",
      flag: false,
      tags: ["a", "b,c", 'd"e', ""],
      blob: new Uint8Array([0, 1, 254, 255]),
    };
    await db.insert(fidelity).values(row);
    const [back] = await db.select().from(fidelity).where(eq(fidelity.id, row.id));
    expect(back).toMatchObject({ ...row, blob: expect.anything() });
    expect([...(back!.blob as unknown as Uint8Array)]).toEqual([0, 1, 254, 255]);
  });

  it("keeps NULL as null in every column", async () => {
    const id = "00000000-0000-4000-8000-000000000001";
    await db.insert(fidelity).values({ id });
    const [back] = await db.select().from(fidelity).where(eq(fidelity.id, id));
    expect(back).toEqual({ id, label: null, doc: null, at: null, big: null, amount: null, flag: null, tags: null, blob: null });
  });

  it("answers with field metadata and command tags like Neon", async () => {
    const result = await sql.query("SELECT 1::int4 AS one, 'x'::text AS t", [], { fullResults: true, arrayMode: true });
    expect(result.command).toBe("SELECT");
    expect(result.rowCount).toBe(1);
    expect(result.fields.map((f: { name: string; dataTypeID: number }) => [f.name, f.dataTypeID])).toEqual([["one", 23], ["t", 25]]);
    expect(result.rows).toEqual([[1, "x"]]);
  });
});

describe("errors", () => {
  it("rolls back a whole batch when its second statement violates a unique constraint", async () => {
    const error = await errorOf(
      db.batch([
        db.insert(teams).values({ id: "team_batch000000001", slug: "batch-one", name: "One" }),
        db.insert(teams).values({ id: "team_batch000000002", slug: "batch-one", name: "Two" }),
      ]),
    );
    expect(error).toMatchObject({ code: "23505", constraint: "teams_slug_key", table: "teams", severity: "ERROR" });
    expect(await db.select().from(teams).where(eq(teams.slug, "batch-one"))).toEqual([]);
  });

  it("keeps the codes of foreign-key and syntax errors", async () => {
    const fk = await errorOf(sql.query("INSERT INTO team_members (team_id, user_id, role) VALUES ('team_nope', 'usr_nope', 'owner')"));
    expect(fk).toMatchObject({ code: "23503", constraint: expect.stringContaining("team_members_") });
    const syntax = await errorOf(sql.query("SELEC 1"));
    expect(syntax).toMatchObject({ code: "42601", position: "1" });
  });

  it("rejects a string with several statements, as Neon does", async () => {
    const error = await errorOf(sql.query("SELECT 1; SELECT 2"));
    expect(error).toMatchObject({ code: "42601" });
  });

  it("surfaces a failing single drizzle query with the error in .cause", async () => {
    try {
      await db.execute(dsql`SELECT * FROM no_such_table`);
      expect.unreachable();
    } catch (error) {
      expect((error as Error).cause).toMatchObject({ name: "NeonDbError", code: "42P01" });
    }
  });
});

describe("batch transactions", () => {
  it("honours the isolation level", async () => {
    const [level] = await sql.transaction([sql.query("SHOW transaction_isolation")], { isolationLevel: "Serializable" });
    expect(level).toEqual([{ transaction_isolation: "serializable" }]);
    const [defaultLevel] = await sql.transaction([sql.query("SHOW transaction_isolation")]);
    expect(defaultLevel).toEqual([{ transaction_isolation: "read committed" }]);
  });

  it("honours read-only batches", async () => {
    const error = await errorOf(
      sql.transaction([sql.query("INSERT INTO teams (id, slug, name) VALUES ('team_readonly00000001', 'read-only', 'x')")], {
        readOnly: true,
      }),
    );
    expect(error).toMatchObject({ code: "25006" });
    const [mode] = await sql.transaction([sql.query("SHOW transaction_read_only")], { readOnly: true, isolationLevel: "Serializable", deferrable: true });
    expect(mode).toEqual([{ transaction_read_only: "on" }]);
  });
});
