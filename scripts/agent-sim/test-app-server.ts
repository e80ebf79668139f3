// The simulator's test app (test-app.ts) behind a real HTTP server on Node, so a simulated preview VM answers on a
// port like a real one and the agent's tunnel reaches it through agent/src/tunnel/http-upstream.ts.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { WebSocketServer } from "ws";
import { testApp } from "./test-app.ts";

export interface TestAppServer {
  port: number;
  stop(): Promise<void>;
}

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  return new Request(`http://${req.headers.host ?? "app"}${req.url ?? "/"}`, {
    method: req.method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>) : null,
    signal,
    // Node's fetch types need this for a streamed body; the Workers types do not know it.
    ...({ duplex: "half" } as object),
  });
}

/** Starts the test app on 127.0.0.1 (port 0: a free one). */
export async function startTestAppServer(port = 0): Promise<TestAppServer> {
  const sockets = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => [...protocols][0] ?? false });
  const server: Server = createServer(async (req, res) => {
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    try {
      const response = await testApp.fetch(toRequest(req, abort.signal));
      const headers: [string, string][] = [...response.headers].filter(([name]) => name !== "set-cookie");
      for (const cookie of response.headers.getSetCookie()) headers.push(["set-cookie", cookie]);
      res.writeHead(response.status, headers.flat());
      if (!response.body) return void res.end();
      Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>).on("error", () => res.destroy()).pipe(res);
    } catch (error) {
      res.writeHead(500).end(error instanceof Error ? error.message : "error");
    }
  });
  server.on("upgrade", (req, socket, head) => {
    sockets.handleUpgrade(req, socket, head, (ws) => {
      ws.binaryType = "arraybuffer";
      testApp.webSocket(ws as unknown as WebSocket, ws.protocol ? [ws.protocol] : []);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      for (const client of sockets.clients) client.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
