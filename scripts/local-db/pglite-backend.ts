import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite, type Results } from "@electric-sql/pglite";
import { assertDatabaseName, toTextParam, transactionModes, type Backend, type QueryResult, type Statement, type TransactionOptions } from "./backend.ts";

// Values stay Postgres text both ways, exactly as Neon's raw-text mode returns them (no BigInt, no Date, no bytea Uint8Array).
const identity = (value: unknown) => value;
const identityForEveryType = () => new Proxy({}, { get: () => identity });

type Queryable = Pick<PGlite, "query">;

async function run(db: Queryable, statement: Statement): Promise<QueryResult> {
  const result: Results<unknown[]> = await db.query<unknown[]>(statement.query, statement.params.map(toTextParam), {
    rowMode: "array",
    serializers: identityForEveryType(),
  });
  return {
    command: result.command ?? "",
    rowCount: result.rowCount ?? result.affectedRows ?? null,
    fields: result.fields.map((f) => ({
      name: f.name,
      tableID: 0,
      columnID: 0,
      dataTypeID: f.dataTypeID,
      dataTypeSize: 0,
      dataTypeModifier: -1,
      format: "text",
    })),
    rows: result.rows as (string | null)[][],
  };
}

/**
 * Embedded Postgres (WASM), one instance per database. With `dataRoot`, database `x` persists in `<dataRoot>/x`;
 * without it, everything is in memory.
 */
export class PgliteBackend implements Backend {
  readonly name = "pglite";
  private readonly databases = new Map<string, Promise<PGlite>>();

  private readonly dataRoot: string | undefined;

  constructor(dataRoot?: string) {
    this.dataRoot = dataRoot;
  }

  private open(database: string, loadDataDir?: Blob | File): Promise<PGlite> {
    assertDatabaseName(database);
    let db = this.databases.get(database);
    if (!db) {
      let dataDir: string | undefined;
      if (this.dataRoot) {
        mkdirSync(this.dataRoot, { recursive: true });
        dataDir = join(this.dataRoot, database);
      }
      db = PGlite.create({ dataDir, loadDataDir }).then((instance) => {
        (instance as unknown as { parsers: object }).parsers = identityForEveryType();
        return instance;
      });
      this.databases.set(database, db);
      db.catch(() => this.databases.delete(database));
    }
    return db;
  }

  async query(database: string, statement: Statement): Promise<QueryResult> {
    return run(await this.open(database), statement);
  }

  async transaction(database: string, statements: Statement[], options: TransactionOptions): Promise<QueryResult[]> {
    const db = await this.open(database);
    const modes = transactionModes(options);
    return db.transaction(async (tx) => {
      // PGlite's transaction() sends a bare BEGIN; the modes are set as the first thing inside it.
      if (modes) await tx.exec(`SET TRANSACTION ${modes}`);
      const results: QueryResult[] = [];
      for (const statement of statements) results.push(await run(tx, statement));
      return results;
    });
  }

  async createDatabase(database: string, template?: string): Promise<void> {
    if (this.databases.has(database)) throw new Error(`database "${database}" already exists`);
    const dump = template ? await (await this.open(template)).dumpDataDir("none") : undefined;
    await this.open(database, dump);
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.databases.values());
    await Promise.all(all.map((r) => (r.status === "fulfilled" ? r.value.close() : undefined)));
    this.databases.clear();
  }
}
