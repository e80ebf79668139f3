import pg from "pg";
import { assertDatabaseName, toTextParam, transactionModes, type Backend, type QueryResult, type Statement, type TransactionOptions } from "./backend.ts";

const rawText = { getTypeParser: () => (value: string) => value };

function toResult(result: pg.QueryResult<unknown[]>): QueryResult {
  return {
    command: result.command,
    rowCount: result.rowCount,
    fields: result.fields.map((f) => ({
      name: f.name,
      tableID: f.tableID,
      columnID: f.columnID,
      dataTypeID: f.dataTypeID,
      dataTypeSize: f.dataTypeSize,
      dataTypeModifier: f.dataTypeModifier,
      format: "text",
    })),
    rows: result.rows as (string | null)[][],
  };
}

async function run(client: pg.Pool | pg.PoolClient, statement: Statement): Promise<QueryResult> {
  const result = await client.query<unknown[]>({
    text: statement.query,
    values: statement.params.map(toTextParam),
    rowMode: "array",
    types: rawText,
    // The extended protocol, as on Neon: a string with several statements is an error.
    queryMode: "extended",
  } as pg.QueryArrayConfig);
  return toResult(result);
}

/** A real PostgreSQL server reached with `baseUrl` (its database part is replaced per request). */
export class PgBackend implements Backend {
  readonly name = "postgres";
  private readonly pools = new Map<string, pg.Pool>();

  private readonly baseUrl: string;

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl;
  }

  private pool(database: string): pg.Pool {
    let pool = this.pools.get(database);
    if (!pool) {
      const url = new URL(this.baseUrl);
      url.pathname = `/${database}`;
      pool = new pg.Pool({ connectionString: url.toString(), max: 10, idleTimeoutMillis: 10_000 });
      pool.on("error", () => {}); // an idle client dying is not fatal; the next query reconnects
      this.pools.set(database, pool);
    }
    return pool;
  }

  query(database: string, statement: Statement): Promise<QueryResult> {
    return run(this.pool(database), statement);
  }

  async transaction(database: string, statements: Statement[], options: TransactionOptions): Promise<QueryResult[]> {
    const client = await this.pool(database).connect();
    let healthy = true;
    try {
      await client.query(`BEGIN ${transactionModes(options)}`);
      const results: QueryResult[] = [];
      for (const statement of statements) results.push(await run(client, statement));
      await client.query("COMMIT");
      return results;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        healthy = false;
      });
      throw error;
    } finally {
      client.release(!healthy);
    }
  }

  async createDatabase(database: string, template?: string): Promise<void> {
    assertDatabaseName(database);
    if (template) {
      assertDatabaseName(template);
      // CREATE DATABASE ... TEMPLATE needs the template to have no open connections.
      await this.pools.get(template)?.end();
      this.pools.delete(template);
    }
    const admin = new URL(this.baseUrl).pathname.slice(1) || "postgres";
    await this.pool(admin).query(`CREATE DATABASE ${database}${template ? ` TEMPLATE ${template}` : ""}`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.end()));
    this.pools.clear();
  }
}
