import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/** Small pieces every fake service (and the local GitHub) shares: body reading, JSON answers, a listening server. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(text);
}

/** A server on 127.0.0.1 (`port` 0, the default: a free one); rejects when the port is taken. */
export function listen(handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>, port = 0): Promise<Server> {
  const server = createServer((req, res) => {
    handler(req, res).catch((error: unknown) => json(res, 500, { message: `fake failed: ${String(error)}` }));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}
