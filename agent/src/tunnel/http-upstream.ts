// An Upstream (tunnel.ts) for an HTTP server on a fixed address: what the real agent's resolver returns for an
// exposed service, 127.0.0.1:<published port> or the container's compose-network address. Node only (node:http,
// the global WebSocket). Bodies stream both ways with Node's own backpressure; nothing is decoded or buffered whole.
import { Agent, request as httpRequest, type IncomingMessage } from "node:http";
import { Readable, pipeline } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import type { Upstream, UpstreamRequest, UpstreamResponse } from "./tunnel.ts";

/** Node's WebSocket (undici) takes protocols and headers; the Workers types in this project do not know that. */
const WebSocketWithInit = WebSocket as unknown as new (url: string, init: { protocols: string[]; headers: Record<string, string> }) => WebSocket;

/** Statuses whose responses never have a body (RFC 9110), whatever their headers say. */
const noBodyStatuses = new Set([204, 205, 304]);

/**
 * An upstream at `host:port`. Keep one per target: it holds a keep-alive connection pool. Only ever connects to
 * the address given here, whatever the request's Host header or path says.
 */
export function httpUpstream(address: { host: string; port: number }): Upstream {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const origin = `${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`;
  return {
    request: (request) => exchange(agent, address, request),
    webSocket: ({ path, headers, protocols, signal }) =>
      new Promise((resolve, reject) => {
        // The WebSocket client sets Host, Upgrade and the handshake headers itself.
        const forwarded = Object.fromEntries(headers.filter(([name]) => name.toLowerCase() !== "host"));
        const socket = new WebSocketWithInit(`ws://${origin}${path}`, { protocols, headers: forwarded });
        socket.binaryType = "arraybuffer";
        const abort = () => socket.close(1000, "the visitor went away");
        signal.addEventListener("abort", abort, { once: true });
        socket.addEventListener("open", () => resolve({ socket, protocol: socket.protocol ?? "" }), { once: true });
        socket.addEventListener(
          "close",
          () => {
            signal.removeEventListener("abort", abort);
            reject(new Error(`the app at ${origin} did not accept the WebSocket`));
          },
          { once: true },
        );
      }),
  };
}

function exchange(agent: Agent, address: { host: string; port: number }, request: UpstreamRequest): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({
      host: address.host,
      port: address.port,
      method: request.method,
      path: request.path,
      // A flat [name, value, name, value, ...] list keeps repeated headers and the visitor's Host as they were.
      headers: request.headers.flat(),
      setHost: !request.headers.some(([name]) => name.toLowerCase() === "host"),
      agent,
      signal: request.signal,
    });
    outgoing.on("error", reject);
    outgoing.on("response", (response: IncomingMessage) => {
      const headers: [string, string][] = [];
      for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) headers.push([response.rawHeaders[i]!, response.rawHeaders[i + 1]!]);
      const status = response.statusCode ?? 502;
      const hasBody = request.method !== "HEAD" && !noBodyStatuses.has(status);
      if (!hasBody) response.resume();
      // Node's web streams and the global (Workers-typed) ones are the same objects at run time.
      resolve({ status, headers, body: hasBody ? (Readable.toWeb(response) as unknown as ReadableStream<Uint8Array>) : null });
    });
    // pipeline: a request body that breaks off (the exchange was abandoned) ends the request to the app with it.
    if (request.body) pipeline(Readable.fromWeb(request.body as unknown as NodeReadableStream<Uint8Array>), outgoing, () => {});
    else outgoing.end();
  });
}
