import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * What the fake clouds (aws.ts, digitalocean.ts, hetzner.ts) share. Each test creates its own account through
 * `POST /_fake/accounts`, so test files running at the same time never see each other's instances, failures or
 * requests. Per account:
 *   POST /_fake/accounts/<key>/failures  {match, status, code, message, headers?, mode?, times?}
 *        the next `times` (1) requests whose operation starts with `match` fail. mode "error" (default) answers the
 *        cloud's error document; "reset" drops the connection unanswered; "hang" never answers; "drop_response" does
 *        the work, then drops the connection (a create whose answer was lost).
 *   GET  /_fake/accounts/<key>/requests  every authenticated request so far: {requests: [{operation, method, path, headers, body}]}
 * Operations are "RunInstances" (EC2 Action) or "POST /v2/droplets" (method and path).
 */
export interface Failure {
  match: string;
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
  mode: "error" | "reset" | "hang" | "drop_response";
  times: number;
}

export interface RecordedRequest {
  operation: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

export interface CloudAccount {
  failures: Failure[];
  requests: RecordedRequest[];
}

export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export function jsonReply(status: number, body?: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    body: body === undefined ? "" : JSON.stringify(body),
    headers: body === undefined ? headers : { "content-type": "application/json; charset=utf-8", ...headers },
  };
}

export function writeReply(res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, { ...reply.headers, "content-length": String(Buffer.byteLength(reply.body)) });
  res.end(reply.body);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseFailure(body: unknown): Failure | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const f = body as Record<string, unknown>;
  const modes = ["error", "reset", "hang", "drop_response"] as const;
  const mode = (f.mode ?? "error") as Failure["mode"];
  if (typeof f.match !== "string" || !modes.includes(mode)) return undefined;
  return {
    match: f.match,
    status: typeof f.status === "number" ? f.status : 500,
    code: typeof f.code === "string" ? f.code : "InternalError",
    message: typeof f.message === "string" ? f.message : "injected failure",
    headers: (f.headers ?? {}) as Record<string, string>,
    mode,
    times: typeof f.times === "number" ? f.times : 1,
  };
}

/**
 * The admin routes every fake cloud has (see the top of this file); answers undefined for any other path.
 * `accountOf` finds an account by its key (access key id or token).
 */
export function commonAdmin(route: string, body: string, accountOf: (key: string) => CloudAccount | undefined): Reply | undefined {
  const match = /^(GET|POST) \/_fake\/accounts\/([^/]+)\/(failures|requests)$/.exec(route);
  if (!match) return undefined;
  const [, method, key, what] = match;
  const account = accountOf(decodeURIComponent(key!));
  if (!account) return jsonReply(404, { message: "no such fake account" });
  if (method === "GET" && what === "requests") return jsonReply(200, { requests: account.requests });
  if (method === "POST" && what === "failures") {
    const failure = parseFailure(parseJson(body));
    if (!failure) return jsonReply(400, { message: "a failure needs match and a known mode" });
    account.failures.push(failure);
    return jsonReply(204);
  }
  return jsonReply(405, { message: "method not allowed" });
}

/**
 * Records an authenticated request, then either does `work` or, when a failure was injected for this operation,
 * what the failure says. Writes the reply (or nothing, for reset/hang/drop_response).
 */
export async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  account: CloudAccount,
  request: RecordedRequest,
  errorReply: (failure: Failure) => Reply,
  work: () => Reply | Promise<Reply>,
): Promise<void> {
  account.requests.push(request);
  const index = account.failures.findIndex((f) => request.operation.startsWith(f.match));
  const failure = index === -1 ? undefined : account.failures[index]!;
  if (failure && --failure.times <= 0) account.failures.splice(index, 1);
  switch (failure?.mode) {
    case undefined:
      return writeReply(res, await work());
    case "error":
      return writeReply(res, errorReply(failure));
    case "drop_response":
      await work();
      req.socket.destroy();
      return;
    case "reset":
      req.socket.destroy();
      return;
    case "hang":
      return;
  }
}

/** Lowercased request headers as single strings. */
export function headersOf(req: IncomingMessage): Record<string, string> {
  return Object.fromEntries(Object.entries(req.headersDistinct).map(([name, values]) => [name, (values ?? []).join(",")]));
}
