import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

/**
 * Git's smart HTTP protocol for reading repositories, the way GitHub serves them to a clone token: `git http-backend`
 * (git's own CGI program) behind a Node HTTP server. Repositories are bare folders `<root>/<owner>/<name>.git`; a
 * client presents `x-access-token:<token>` as Basic credentials and `authorize` decides. Read-only: pushes are refused.
 *
 *   GET  /<owner>/<name>[.git]/info/refs?service=git-upload-pack
 *   POST /<owner>/<name>[.git]/git-upload-pack
 *
 * Without credentials a private repository answers 401 (the client then sends them); a token that may not read it
 * gets 404, as on GitHub, so a wrong token does not reveal that the repository exists.
 */
export interface GitServerOptions {
  /** The folder of bare repositories: `<root>/<owner>/<name>.git`. */
  root: string;
  /** May `token` (null: no credentials) read `repo` ("owner/name")? Asked on every request. */
  authorize(token: string | null, repo: string): boolean | Promise<boolean>;
}

const ROUTE = /^\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend";

function tokenOf(req: IncomingMessage): string | null {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? "");
  if (!match) return null;
  const [user, ...rest] = Buffer.from(match[1]!, "base64").toString("utf8").split(":");
  return user === "x-access-token" && rest.length > 0 ? rest.join(":") : null;
}

function reply(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers }).end(`${text}\n`);
}

/** Runs `git http-backend` for one request and streams its answer (a CGI response: headers, blank line, body). */
function runBackend(root: string, pathInfo: string, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: "1",
    PATH_INFO: pathInfo,
    REQUEST_METHOD: req.method ?? "GET",
    QUERY_STRING: url.search.slice(1),
    REMOTE_ADDR: req.socket.remoteAddress ?? "",
    // Protocol v0 clients may then fetch a commit by id, as protocol v2 clients always may.
    GIT_CONFIG_COUNT: "1",
    GIT_CONFIG_KEY_0: "uploadpack.allowReachableSHA1InWant",
    GIT_CONFIG_VALUE_0: "true",
  };
  if (req.headers["content-type"]) env.CONTENT_TYPE = req.headers["content-type"];
  if (req.headers["content-length"]) env.CONTENT_LENGTH = req.headers["content-length"];
  if (req.headers["content-encoding"]) env.HTTP_CONTENT_ENCODING = String(req.headers["content-encoding"]);
  if (req.headers["git-protocol"]) env.GIT_PROTOCOL = String(req.headers["git-protocol"]);

  const backend = spawn(GIT_HTTP_BACKEND, [], { env: env as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "pipe"] });
  req.pipe(backend.stdin);
  backend.stdin.on("error", () => {
    // the backend answered without reading everything
  });
  let head = Buffer.alloc(0);
  let headersSent = false;
  backend.stdout.on("data", (chunk: Buffer) => {
    if (headersSent) {
      if (!res.write(chunk)) {
        backend.stdout.pause();
        res.once("drain", () => backend.stdout.resume());
      }
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n") >= 0 ? head.indexOf("\r\n\r\n") : head.indexOf("\n\n");
    if (end < 0) return;
    const separator = head.indexOf("\r\n\r\n") === end ? 4 : 2;
    const headers: Record<string, string> = {};
    let status = 200;
    for (const line of head.subarray(0, end).toString("latin1").split(/\r?\n/)) {
      const at = line.indexOf(":");
      if (at < 1) continue;
      const name = line.slice(0, at).trim();
      const value = line.slice(at + 1).trim();
      if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    headersSent = true;
    res.write(head.subarray(end + separator));
  });
  backend.stdout.on("end", () => {
    if (!headersSent) reply(res, 502, "git http-backend sent no answer");
    else res.end();
  });
  backend.on("error", (error) => {
    if (!headersSent) reply(res, 500, `could not run git http-backend: ${error.message}`);
  });
}

/** The smart HTTP handler, to mount in any Node HTTP server (the local GitHub serves clones through it). */
export function gitHttpHandler(options: GitServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://git.local");
    const match = ROUTE.exec(url.pathname);
    if (!match || match[1] === ".." || match[2] === ".." || match[1] === "." || match[2] === ".") return reply(res, 404, "Not Found");
    const [, owner, name, action] = match as unknown as [string, string, string, string];
    const service = action === "info/refs" ? url.searchParams.get("service") : action;
    if (service === "git-receive-pack") return reply(res, 403, "This server is read-only: pushes are refused");
    if (service !== "git-upload-pack") return reply(res, 403, "Only the smart HTTP protocol is served (service=git-upload-pack)");
    const repo = `${owner}/${name}`;
    const token = tokenOf(req);
    Promise.resolve(options.authorize(token, repo)).then(
      (allowed) => {
        if (!allowed) {
          if (token === null) return reply(res, 401, "Authentication required", { "WWW-Authenticate": 'Basic realm="stagely-git"' });
          return reply(res, 404, "Repository not found");
        }
        if (!existsSync(join(options.root, owner, `${name}.git`))) return reply(res, 404, "Repository not found");
        runBackend(options.root, `/${owner}/${name}.git/${action}`, req, res, url);
      },
      () => reply(res, 500, "could not check the credentials"),
    );
  };
}

/** The handler on its own HTTP server (tests, benchmarks): `<url>/<owner>/<name>.git` is a clone URL. */
export async function startGitServer(options: GitServerOptions & { port?: number; host?: string }): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const server = createServer(gitHttpHandler(options));
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
