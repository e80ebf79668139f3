/** What the Neon HTTP protocol needs from a Postgres: one query, or several in one transaction. */
export interface Field {
  name: string;
  tableID: number;
  columnID: number;
  dataTypeID: number;
  dataTypeSize: number;
  dataTypeModifier: number;
  format: "text";
}

export interface QueryResult {
  command: string;
  rowCount: number | null;
  fields: Field[];
  rows: (string | null)[][];
}

export interface Statement {
  query: string;
  params: unknown[];
}

export type IsolationLevel = "ReadUncommitted" | "ReadCommitted" | "RepeatableRead" | "Serializable";

export interface TransactionOptions {
  isolationLevel?: IsolationLevel;
  readOnly?: boolean;
  deferrable?: boolean;
}

export interface Backend {
  readonly name: string;
  query(database: string, statement: Statement): Promise<QueryResult>;
  transaction(database: string, statements: Statement[], options: TransactionOptions): Promise<QueryResult[]>;
  /** Creates `database`, as a copy of `template` when given. */
  createDatabase(database: string, template?: string): Promise<void>;
  close(): Promise<void>;
}

const isolationSql: Record<IsolationLevel, string> = {
  ReadUncommitted: "READ UNCOMMITTED",
  ReadCommitted: "READ COMMITTED",
  RepeatableRead: "REPEATABLE READ",
  Serializable: "SERIALIZABLE",
};

/** The transaction modes of a batch, as SQL (`ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE`). */
export function transactionModes(options: TransactionOptions): string {
  const modes: string[] = [];
  if (options.isolationLevel) modes.push(`ISOLATION LEVEL ${isolationSql[options.isolationLevel]}`);
  if (options.readOnly !== undefined) modes.push(options.readOnly ? "READ ONLY" : "READ WRITE");
  if (options.deferrable !== undefined) modes.push(options.deferrable ? "DEFERRABLE" : "NOT DEFERRABLE");
  return modes.join(" ");
}

/** Param values arrive serialized to Postgres text by the driver; JSON may still carry numbers and booleans. */
export function toTextParam(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** Database names this server creates or accepts: plain identifiers, so they never need quoting rules. */
export function assertDatabaseName(name: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid database name "${name}"`);
}
