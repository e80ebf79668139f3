import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import type { Backend, IsolationLevel, QueryResult, Statement, TransactionOptions } from "./backend.ts";

/**
 * Neon's SQL-over-HTTP protocol in front of a local Postgres, so the app talks to its database exactly as in
 * production. `POST /sql` is the protocol; `/_stagely/*` are local tooling (stats for benchmarks, databases for tests).
 */

const errorFields = [
  "severity", "code", "detail", "hint", "position", "internalPosition", "internalQuery", "where",
  "schema", "table", "column", "dataType", "constraint", "file", "line", "routine",
] as const;

const isolationLevels = new Set<IsolationLevel>(["ReadUncommitted", "ReadCommitted", "RepeatableRead", "Serializable"]);
const MAX_BODY_BYTES = 64 * 1024 * 1024;

class RequestError extends Error {}

export interface DatabaseStats {
  round_trips: number;
  statements: number;
}

export interface LocalDbServer {
  readonly port: number;
  /** Base URL of the protocol, e.g. http://127.0.0.1:5488 */
  readonly url: string;
  readonly backend: Backend;
  close(): Promise<void>;
}

function isPostgresError(error: unknown): error is Record<string, unknown> & { message: string } {
  if (typeof error !== "object" || error === null) return false;
  const e = error as Record<string, unknown>;
  return typeof e.severity === "string" && typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new RequestError(`request body exceeds ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function parseStatement(value: unknown): Statement {
  if (typeof value !== "object" || value === null) throw new RequestError("each query must be an object");
  const { query, params } = value as { query?: unknown; params?: unknown };
  if (typeof query !== "string") throw new RequestError("query must be a string");
  if (params !== undefined && !Array.isArray(params)) throw new RequestError("params must be an array");
  return { query, params: params ?? [] };
}

function databaseOf(connectionString: string | undefined): string {
  if (!connectionString) throw new RequestError("missing Neon-Connection-String header");
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw new RequestError("Neon-Connection-String is not a valid URL");
  }
  const database = decodeURIComponent(url.pathname.slice(1));
  if (!database) throw new RequestError("Neon-Connection-String names no database");
  return database;
}

function booleanHeader(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === "true") return true;
  if (value === "false") return false;
  throw new RequestError(`${name} must be true or false`);
}

function shape(result: QueryResult, arrayMode: boolean) {
  const rows = arrayMode
    ? result.rows
    : result.rows.map((row) => Object.fromEntries(result.fields.map((f, i) => [f.name, row[i] ?? null])));
  return { command: result.command, rowCount: result.rowCount, rowAsArray: arrayMode, fields: result.fields, rows };
}

/** STAGELY_DB_TRACE=<file>: one line per round trip (database, then each statement's first 160 characters), to find
 * where a benchmark's round trips go. Parameters are left out: they can hold secrets. */
function trace(database: string, statements: Statement[]): void {
  const file = process.env.STAGELY_DB_TRACE;
  if (!file) return;
  const heads = statements.map((s) => s.query.replace(/\s+/g, " ").slice(0, 160));
  appendFileSync(file, `${JSON.stringify({ at: Date.now(), database, statements: heads })}\n`);
}

export async function startLocalDbServer(options: {
  backend: Backend;
  port?: number;
  host?: string;
  onError?: (error: unknown) => void;
}): Promise<LocalDbServer> {
  const { backend } = options;
  const stats = new Map<string, DatabaseStats>();
  const statsFor = (database: string) => {
    let entry = stats.get(database);
    if (!entry) stats.set(database, (entry = { round_trips: 0, statements: 0 }));
    return entry;
  };

  async function handleSql(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const database = databaseOf(req.headers["neon-connection-string"] as string | undefined);
    const arrayMode = req.headers["neon-array-mode"] === "true";
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (error) {
      if (error instanceof RequestError) throw error;
      throw new RequestError("request body is not valid JSON");
    }
    const counter = statsFor(database);
    counter.round_trips++;
    if (typeof body === "object" && body !== null && "queries" in body) {
      const queries = (body as { queries: unknown }).queries;
      if (!Array.isArray(queries)) throw new RequestError("queries must be an array");
      const statements = queries.map(parseStatement);
      const isolation = req.headers["neon-batch-isolation-level"] as string | undefined;
      if (isolation !== undefined && !isolationLevels.has(isolation as IsolationLevel)) {
        throw new RequestError(`unknown Neon-Batch-Isolation-Level "${isolation}"`);
      }
      const txOptions: TransactionOptions = {
        isolationLevel: isolation as IsolationLevel | undefined,
        readOnly: booleanHeader(req.headers["neon-batch-read-only"] as string | undefined, "Neon-Batch-Read-Only"),
        deferrable: booleanHeader(req.headers["neon-batch-deferrable"] as string | undefined, "Neon-Batch-Deferrable"),
      };
      counter.statements += statements.length;
      trace(database, statements);
      const results = await backend.transaction(database, statements, txOptions);
      send(res, 200, { results: results.map((r) => shape(r, arrayMode)) });
    } else {
      counter.statements++;
      const statement = parseStatement(body);
      trace(database, [statement]);
      send(res, 200, shape(await backend.query(database, statement), arrayMode));
    }
  }

  async function handleTooling(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method === "GET" && url.pathname === "/_stagely/health") return send(res, 200, { backend: backend.name });
    if (req.method === "GET" && url.pathname === "/_stagely/stats") {
      const database = url.searchParams.get("database");
      return send(res, 200, database ? statsFor(database) : Object.fromEntries(stats));
    }
    if (req.method === "POST" && url.pathname === "/_stagely/stats/reset") {
      stats.clear();
      return send(res, 200, {});
    }
    if (req.method === "POST" && url.pathname === "/_stagely/databases") {
      const body = JSON.parse((await readBody(req)) || "{}") as { name?: string; template?: string };
      const name = body.name ?? `t_${randomBytes(6).toString("hex")}`;
      await backend.createDatabase(name, body.template);
      return send(res, 201, { name });
    }
    send(res, 404, { message: `no route ${req.method} ${url.pathname}` });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://local");
    const work = req.method === "POST" && url.pathname === "/sql" ? handleSql(req, res) : handleTooling(req, res, url);
    work.catch((error: unknown) => {
      if (isPostgresError(error)) {
        const body: Record<string, unknown> = { message: error.message };
        for (const field of errorFields) body[field] = error[field] ?? null;
        return send(res, 400, body);
      }
      if (error instanceof RequestError) return send(res, 400, { message: error.message });
      options.onError?.(error);
      send(res, 500, { message: error instanceof Error ? error.message : "internal error" });
    });
  });
  server.keepAliveTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    backend,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await backend.close();
    },
  };
}
