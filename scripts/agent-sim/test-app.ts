// The simulator's preview app: what a simulated preview VM "runs" behind its exposed port, to exercise the preview
// tunnel end to end. Web-standard only (a fetch handler and a WebSocket handler), so it runs in-process inside workerd
// tests and behind a real HTTP server on Node (test-app-server.ts).
//
//   GET  /                      a small HTML page
//   ANY  /echo                  the request as JSON: method, path, headers (as received), body (text, up to 64 KiB) and its size
//   ANY  /status/:code          answers with that status (and no body where HTTP forbids one)
//   GET  /cookies               sets two cookies (two Set-Cookie headers) and echoes the cookies it received
//   GET  /bytes/:n              n bytes of a fixed pattern (byte i = i mod 251), streamed in 64 KiB chunks; ?length=1 sends Content-Length
//   POST /upload?pause_ms=      reads the body as it streams and answers {bytes, pattern_ok}; pause_ms: stops reading for
//                               that long after the first chunk (a slow app, for flow control)
//   GET  /sse?n=&interval_ms=   n server-sent events, one per interval
//   GET  /slow?ms=              answers after ms
//   GET  /never                 never answers
//   GET  /gzip                  a gzip-encoded body with Content-Encoding: gzip
//   WebSocket (any path)        echoes text and binary messages; the text "close:<code>" closes with that code
//                               (the chosen subprotocol is the first one offered)

const PATTERN_MODULUS = 251;
const CHUNK = 64 * 1024;
const MAX_ECHO_TEXT = 64 * 1024;

export interface TestApp {
  fetch(request: Request): Promise<Response>;
  /** Serves a WebSocket the app accepted; returns the subprotocol it chose ("" for none). */
  webSocket(socket: WebSocket, protocols: string[]): string;
}

/** Byte i of the pattern /bytes and /upload use. */
export function patternByte(index: number): number {
  return index % PATTERN_MODULUS;
}

function patternStream(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) return controller.close();
      const size = Math.min(CHUNK, total - sent);
      const chunk = new Uint8Array(size);
      for (let i = 0; i < size; i++) chunk[i] = (sent + i) % PATTERN_MODULUS;
      sent += size;
      controller.enqueue(chunk);
    },
  });
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

export const testApp: TestApp = {
  async fetch(request) {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path === "/") {
      return new Response(`<!doctype html><title>Preview app</title><h1>Hello from the preview app</h1><p>${request.method} ${path}</p>`, {
        headers: { "Content-Type": "text/html; charset=utf-8" },
      });
    }
    if (path === "/echo") {
      const bytes = new Uint8Array(await request.arrayBuffer());
      return Response.json({
        method: request.method,
        path: `${url.pathname}${url.search}`,
        headers: [...request.headers],
        body: new TextDecoder().decode(bytes.subarray(0, MAX_ECHO_TEXT)),
        body_bytes: bytes.byteLength,
      });
    }
    const status = /^\/status\/(\d{3})$/.exec(path);
    if (status) {
      const code = Number(status[1]);
      const bodyless = code === 204 || code === 304 || request.method === "HEAD";
      return new Response(bodyless ? null : `status ${code}`, { status: code, headers: { "X-Status": String(code), ...(code >= 300 && code < 400 ? { Location: "/echo" } : {}) } });
    }
    if (path === "/cookies") {
      const headers = new Headers({ "Content-Type": "application/json" });
      headers.append("Set-Cookie", "app_session=abc123; Path=/; HttpOnly");
      headers.append("Set-Cookie", "app_theme=dark; Path=/");
      return new Response(JSON.stringify({ cookie: request.headers.get("Cookie") }), { headers });
    }
    const bytes = /^\/bytes\/(\d+)$/.exec(path);
    if (bytes) {
      const total = Number(bytes[1]);
      return new Response(patternStream(total), {
        headers: { "Content-Type": "application/octet-stream", ...(url.searchParams.get("length") ? { "Content-Length": String(total) } : {}) },
      });
    }
    if (path === "/upload") {
      let count = 0;
      let ok = true;
      let pause = Number(url.searchParams.get("pause_ms") ?? 0);
      const reader = request.body?.getReader();
      for (;;) {
        const chunk = reader ? await reader.read() : { done: true as const, value: undefined };
        if (chunk.done) break;
        if (pause > 0) {
          await sleep(pause, request.signal);
          pause = 0;
        }
        for (let i = 0; i < chunk.value.byteLength; i++) if (chunk.value[i] !== (count + i) % PATTERN_MODULUS) ok = false;
        count += chunk.value.byteLength;
      }
      return Response.json({ bytes: count, pattern_ok: ok });
    }
    if (path === "/sse") {
      const n = Number(url.searchParams.get("n") ?? 3);
      const interval = Number(url.searchParams.get("interval_ms") ?? 100);
      const encoder = new TextEncoder();
      let sent = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (sent >= n) return controller.close();
            if (sent > 0) await sleep(interval, request.signal);
            controller.enqueue(encoder.encode(`id: ${sent + 1}\ndata: event ${sent + 1} at ${Date.now()}\n\n`));
            sent++;
          },
        }),
        { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" } },
      );
    }
    if (path === "/slow") {
      const ms = Number(url.searchParams.get("ms") ?? 1000);
      await sleep(ms, request.signal);
      return Response.json({ waited_ms: ms });
    }
    if (path === "/never") {
      await new Promise<void>((resolve) => request.signal.addEventListener("abort", () => resolve(), { once: true }));
      return new Response(null, { status: 499 });
    }
    if (path === "/gzip") {
      const body = new Blob([new TextEncoder().encode("compressed by the app ".repeat(100))]).stream().pipeThrough(new CompressionStream("gzip"));
      return new Response(body, { headers: { "Content-Type": "text/plain", "Content-Encoding": "gzip" } });
    }
    return new Response(`no route for ${request.method} ${path}`, { status: 404 });
  },

  webSocket(socket, protocols) {
    socket.addEventListener("message", (event: MessageEvent) => {
      const data = event.data as string | ArrayBuffer;
      const close = typeof data === "string" ? /^close:(\d{4})$/.exec(data) : null;
      if (close) socket.close(Number(close[1]), "closed on request");
      else socket.send(data);
    });
    return protocols[0] ?? "";
  },
};
