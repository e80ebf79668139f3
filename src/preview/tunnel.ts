import { DurableObject } from "cloudflare:workers";
import * as z from "zod";
import {
  CONNECTION_WINDOW_BYTES,
  ConnectionCreditReturn,
  Credit,
  DATA_CHUNK_BYTES,
  FLAG_BINARY,
  FLAG_END_STREAM,
  InboundBody,
  MAX_WS_MESSAGE_BYTES,
  STREAM_WINDOW_BYTES,
  TUNNEL_PING,
  TUNNEL_PONG,
  closableCode,
  decodeFrame,
  encodeFrame,
  forwardableHeaders,
  frameTypes,
  jsonPayload,
  parsePayload,
  reset,
  responseHead,
  sendBody,
  tunnelCloseCodes,
  tunnelHello,
  tunnelTarget,
  windowUpdateBytes,
  windowUpdatePayload,
  wsClose,
  type FrameType,
  type ResponseHead,
  type TunnelError,
  type TunnelReady,
} from "../agents/tunnel-protocol.ts";
import { getConfig } from "../config.ts";
import { Logger, type LogLevel } from "../lib/logger.ts";

/** Internal headers between the Worker and this Durable Object (the Worker never forwards a visitor's copy). */
export const TUNNEL_META_HEADER = "x-stagely-tunnel-meta";
export const TUNNEL_AGENT_HEADER = "x-stagely-tunnel-agent";
/** On a response from this object: why there is no answer from the app (the Worker renders the page). */
export const TUNNEL_ERROR_HEADER = "x-stagely-tunnel-error";

export const tunnelFailures = ["offline", "busy", "timeout", "unreachable"] as const;
export type TunnelFailure = (typeof tunnelFailures)[number];

/** What the Worker tells this object about an exchange: where it goes, and the path and Host the app sees. */
export const tunnelMeta = z.object({ path: z.string().startsWith("/"), host: z.string().min(1).max(300), target: tunnelTarget });
export type TunnelMeta = z.infer<typeof tunnelMeta>;

/** The agent's socket (tag "tunnel") or a visitor's WebSocket relayed through it (tag "client"). */
type Attachment =
  | { kind: "tunnel"; agentId: string; connectionId: string; ready: boolean; streamWindow: number; connectionWindow: number }
  | { kind: "client"; streamId: number; connectionId: string };

interface HttpExchange {
  id: number;
  socket: WebSocket;
  /** Credit the agent granted for this request's body. */
  credit: Credit;
  /** Ends the request-body pump. */
  abort: AbortController;
  head: Deferred<ResponseHead>;
  /** The response body, once the head arrived (null without one). */
  inbound: InboundBody | null;
  websocket: boolean;
}

/** Statuses whose responses never have a body (RFC 9110). */
const noBodyStatuses = new Set([204, 205, 304]);

/**
 * One instance per preview agent (named by its agent id): holds the agent's tunnel WebSocket (hibernatable) and
 * carries visitors' HTTP exchanges and WebSockets over it, multiplexed, with bodies streamed under credit-based flow
 * control. Heartbeats, logs and commands stay on the agent's control connection in AgentConnection, so nothing here
 * can delay them. Only visitors' WebSockets and the tunnel survive hibernation (their tags and attachments say
 * everything); HTTP exchanges keep the object awake while they run.
 */
export class PreviewTunnel extends DurableObject<Env> {
  private readonly exchanges = new Map<number, HttpExchange>();
  private readonly connectionCredit = new Credit(0);
  private readonly creditOwed = new ConnectionCreditReturn((bytes) => this.sendFrame(frameTypes.WINDOW_UPDATE, 0, 0, windowUpdatePayload(bytes)));
  private creditSocket: WebSocket | null = null;
  private nextStreamId = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // The agent's keepalive is answered by the runtime without waking this object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(TUNNEL_PING, TUNNEL_PONG));
  }

  override async fetch(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === "/connect") return this.acceptTunnel(request);
    if (pathname === "/exchange") return this.exchange(request);
    return new Response(null, { status: 404 });
  }

  /** Whether a tunnel is up and ready: for tests and diagnostics. */
  async isConnected(): Promise<boolean> {
    return this.readyTunnel() !== undefined;
  }

  // ---------------------------------------------------------------- the agent's socket

  /** The Worker authenticated the agent (its token, role preview) and names it in TUNNEL_AGENT_HEADER. */
  private acceptTunnel(request: Request): Response {
    const agentId = request.headers.get(TUNNEL_AGENT_HEADER);
    if (!agentId) return new Response(null, { status: 400 });
    if ((request.headers.get("Upgrade") ?? "").toLowerCase() !== "websocket") return new Response(null, { status: 426 });
    for (const old of this.ctx.getWebSockets("tunnel")) this.closeTunnel(old, tunnelCloseCodes.superseded, "replaced by a newer tunnel");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ["tunnel"]);
    server.serializeAttachment({
      kind: "tunnel",
      agentId,
      connectionId: crypto.randomUUID(),
      ready: false,
      streamWindow: STREAM_WINDOW_BYTES,
      connectionWindow: CONNECTION_WINDOW_BYTES,
    } satisfies Attachment);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const attachment = attachmentOf(ws);
    if (attachment.kind === "client") return this.fromVisitor(ws, attachment, message);
    if (typeof message === "string") return this.onTunnelText(ws, attachment, message);
    if (!attachment.ready) return;
    const frame = decodeFrame(message);
    if (typeof frame === "string") {
      this.logger().warn("bad tunnel frame from the agent", { agent_id: attachment.agentId, problem: frame });
      return;
    }
    this.onFrame(ws, frame.type, frame.streamId, frame.flags, frame.payload);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const attachment = attachmentOf(ws);
    if (attachment.kind === "client") {
      this.sendFrame(frameTypes.WS_CLOSE, attachment.streamId, 0, jsonPayload({ code: closableCode(code), reason: reason.slice(0, 123) }));
    } else {
      this.tunnelGone(ws, attachment.connectionId);
    }
    try {
      ws.close(closableCode(code), reason.slice(0, 123));
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    return this.webSocketClose(ws, 1006, "socket error");
  }

  private onTunnelText(ws: WebSocket, attachment: Extract<Attachment, { kind: "tunnel" }>, text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    const parsed = tunnelHello.extend({ stream_window: z.number().int().positive().optional(), connection_window: z.number().int().positive().optional() }).safeParse(value);
    if (!parsed.success) {
      const version = (value as { version?: unknown } | undefined)?.version;
      const wrongVersion = typeof version === "string" && !tunnelHello.shape.version.safeParse(version).success;
      this.sendText(ws, {
        type: "ERROR",
        code: wrongVersion ? "VERSION_MISMATCH" : "BAD_MESSAGE",
        message: wrongVersion ? "the tunnel needs protocol 1.1 or a later 1.x" : "expected TUNNEL_HELLO",
      });
      if (wrongVersion) this.closeTunnel(ws, tunnelCloseCodes.versionMismatch, "protocol version not supported");
      return;
    }
    if (parsed.data.agent_id !== attachment.agentId) {
      this.sendText(ws, { type: "ERROR", code: "AUTH_FAILED", message: "agent_id does not match the token" });
      this.closeTunnel(ws, tunnelCloseCodes.authFailed, "agent_id does not match the token");
      return;
    }
    ws.serializeAttachment({
      ...attachment,
      ready: true,
      streamWindow: parsed.data.stream_window ?? STREAM_WINDOW_BYTES,
      connectionWindow: parsed.data.connection_window ?? CONNECTION_WINDOW_BYTES,
    } satisfies Attachment);
    this.sendText(ws, {
      type: "TUNNEL_READY",
      stream_window: STREAM_WINDOW_BYTES,
      connection_window: CONNECTION_WINDOW_BYTES,
      max_frame_bytes: DATA_CHUNK_BYTES,
      max_streams: this.maxExchanges(),
    });
    this.logger().info("preview tunnel ready", { agent_id: attachment.agentId });
  }

  private onFrame(ws: WebSocket, type: FrameType, streamId: number, flags: number, payload: Uint8Array): void {
    switch (type) {
      case frameTypes.RESPONSE: {
        const exchange = this.exchanges.get(streamId);
        if (!exchange) return this.sendFrame(frameTypes.RESET, streamId, 0, jsonPayload({ code: "cancelled", message: "no such exchange" }));
        const head = parsePayload(responseHead, payload, "RESPONSE");
        if (typeof head === "string") return this.failExchange(exchange, "protocol_error", head);
        const bodyless = (flags & FLAG_END_STREAM) !== 0 || exchange.websocket || noBodyStatuses.has(head.status);
        if (!bodyless) {
          exchange.inbound = new InboundBody(
            STREAM_WINDOW_BYTES,
            (bytes, final) => (final ? this.creditOwed.add(bytes) : this.sendFrame(frameTypes.WINDOW_UPDATE, streamId, 0, windowUpdatePayload(bytes))),
            (dropped) => this.creditOwed.add(dropped),
          );
        } else if (!exchange.websocket) {
          this.finishExchange(exchange);
        }
        exchange.head.resolve(head);
        return;
      }
      case frameTypes.DATA: {
        const inbound = this.exchanges.get(streamId)?.inbound;
        if (!inbound) {
          // An exchange already over: the bytes still counted against this object's connection window.
          this.creditOwed.add(payload.byteLength);
          return;
        }
        if (!inbound.push(payload)) return this.failExchange(this.exchanges.get(streamId)!, "protocol_error", "DATA beyond the stream window");
        if (flags & FLAG_END_STREAM) {
          inbound.end();
          this.finishExchange(this.exchanges.get(streamId)!);
        }
        return;
      }
      case frameTypes.WINDOW_UPDATE: {
        const bytes = windowUpdateBytes(payload);
        if (typeof bytes === "string") return;
        this.creditFor(ws).grant(bytes);
        if (streamId !== 0) this.exchanges.get(streamId)?.credit.grant(bytes);
        return;
      }
      case frameTypes.RESET: {
        const exchange = this.exchanges.get(streamId);
        const detail = parsePayload(reset, payload, "RESET");
        if (exchange) this.failExchange(exchange, typeof detail === "string" ? "protocol_error" : detail.code, typeof detail === "string" ? detail : detail.message, false);
        return;
      }
      case frameTypes.WS_MESSAGE: {
        const visitor = this.visitorSocket(streamId);
        if (!visitor) return;
        visitor.send(flags & FLAG_BINARY ? payload.slice() : new TextDecoder().decode(payload));
        return;
      }
      case frameTypes.WS_CLOSE: {
        const visitor = this.visitorSocket(streamId);
        const close = parsePayload(wsClose, payload, "WS_CLOSE");
        if (visitor) visitor.close(typeof close === "string" ? 1000 : closableCode(close.code), typeof close === "string" ? "" : close.reason);
        return;
      }
      case frameTypes.REQUEST:
        return this.sendFrame(frameTypes.RESET, streamId, 0, jsonPayload({ code: "protocol_error", message: "REQUEST goes from Core to the agent" }));
    }
  }

  /** The agent's socket closed: its exchanges and relayed WebSockets end with it. */
  private tunnelGone(ws: WebSocket, connectionId: string): void {
    for (const exchange of [...this.exchanges.values()]) {
      if (exchange.socket === ws) this.failExchange(exchange, "cancelled", "the preview's agent disconnected", false);
    }
    for (const visitor of this.ctx.getWebSockets("client")) {
      const attachment = attachmentOf(visitor);
      if (attachment.kind === "client" && attachment.connectionId === connectionId) {
        try {
          visitor.close(1000, "the preview's agent disconnected");
        } catch {
          // already closed
        }
      }
    }
    if (this.creditSocket === ws) this.creditSocket = null;
  }

  // ---------------------------------------------------------------- exchanges

  private async exchange(request: Request): Promise<Response> {
    const meta = tunnelMeta.safeParse(JSON.parse(request.headers.get(TUNNEL_META_HEADER) ?? "null"));
    if (!meta.success) return new Response("bad tunnel metadata", { status: 400 });
    const ws = this.readyTunnel();
    if (!ws) return failure("offline", "the preview's agent is not connected");
    if (this.exchanges.size + this.ctx.getWebSockets("client").length >= this.maxExchanges()) {
      return failure("busy", `this preview is already serving ${this.maxExchanges()} requests`);
    }
    const attachment = attachmentOf(ws) as Extract<Attachment, { kind: "tunnel" }>;
    const websocket = (request.headers.get("Upgrade") ?? "").toLowerCase() === "websocket";
    const id = this.allocateStreamId();
    const exchange: HttpExchange = {
      id,
      socket: ws,
      credit: new Credit(attachment.streamWindow),
      abort: new AbortController(),
      head: deferred<ResponseHead>(),
      inbound: null,
      websocket,
    };
    exchange.head.promise.catch(() => {});
    this.exchanges.set(id, exchange);
    const headers: [string, string][] = [...request.headers].filter(([name]) => name !== TUNNEL_META_HEADER && name !== "host");
    headers.unshift(["host", meta.data.host]);
    const protocols = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
    const hasBody = request.body !== null && !websocket;
    this.sendFrame(
      frameTypes.REQUEST,
      id,
      hasBody ? 0 : FLAG_END_STREAM,
      jsonPayload({
        method: request.method,
        path: meta.data.path,
        headers: forwardableHeaders(headers, websocket),
        target: meta.data.target,
        websocket: websocket ? { protocols } : null,
      }),
    );
    const bodySent = hasBody
      ? sendBody(
          request.body!,
          { stream: exchange.credit, connection: this.creditFor(ws) },
          (chunk, end) => this.sendFrame(frameTypes.DATA, id, end ? FLAG_END_STREAM : 0, chunk),
          exchange.abort.signal,
        ).catch(() => {
          // The visitor's upload broke off (or the exchange ended first): the agent abandons the stream too.
          if (this.exchanges.has(id)) this.failExchange(exchange, "cancelled", "the visitor's request body broke off");
        })
      : Promise.resolve();

    // The app has this long to answer once it has the whole request (an upload's time does not count).
    const timeoutMs = getConfig(this.env).PREVIEW_RESPONSE_TIMEOUT_SECONDS * 1000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = bodySent.then(() => new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs))));
    const head = await Promise.race([exchange.head.promise, timedOut]).catch((error: ExchangeError) => error);
    clearTimeout(timer);
    if (head === "timeout") {
      this.failExchange(exchange, "timeout", `the app did not answer within ${timeoutMs / 1000} s`);
      return failure("timeout", `the app did not answer within ${timeoutMs / 1000} s`);
    }
    if (head instanceof ExchangeError) return failure(head.failure, head.message);

    const responseHeaders = new Headers();
    for (const [name, value] of forwardableHeaders(head.headers, websocket)) {
      if (!name.toLowerCase().startsWith("x-stagely-tunnel")) responseHeaders.append(name, value);
    }
    if (websocket) {
      if (head.status !== 101) {
        this.finishExchange(exchange);
        return new Response(null, { status: head.status, headers: responseHeaders });
      }
      return this.relayWebSocket(exchange, attachment.connectionId, head);
    }
    // Bodies pass through exactly as the app encoded them (no re-compression by the runtime).
    return new Response(exchange.inbound?.stream ?? null, { status: head.status, headers: responseHeaders, encodeBody: "manual" });
  }

  /** The app accepted a WebSocket: the visitor gets the other end of a socket relayed through the tunnel. */
  private relayWebSocket(exchange: HttpExchange, connectionId: string, head: ResponseHead): Response {
    this.exchanges.delete(exchange.id);
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ["client", `stream:${exchange.id}`]);
    server.serializeAttachment({ kind: "client", streamId: exchange.id, connectionId } satisfies Attachment);
    const protocol = head.headers.find(([name]) => name.toLowerCase() === "sec-websocket-protocol")?.[1];
    return new Response(null, { status: 101, webSocket: client, headers: protocol ? { "Sec-WebSocket-Protocol": protocol } : {} });
  }

  private fromVisitor(ws: WebSocket, attachment: Extract<Attachment, { kind: "client" }>, message: string | ArrayBuffer): void {
    const tunnel = this.readyTunnel();
    if (!tunnel || (attachmentOf(tunnel) as Extract<Attachment, { kind: "tunnel" }>).connectionId !== attachment.connectionId) {
      ws.close(1000, "the preview's agent disconnected");
      return;
    }
    const bytes = typeof message === "string" ? new TextEncoder().encode(message) : new Uint8Array(message);
    if (bytes.byteLength > MAX_WS_MESSAGE_BYTES) {
      ws.close(1000, `message over ${MAX_WS_MESSAGE_BYTES} bytes: too big for the preview tunnel`);
      return;
    }
    this.sendFrame(frameTypes.WS_MESSAGE, attachment.streamId, typeof message === "string" ? 0 : FLAG_BINARY, bytes);
  }

  /** The exchange is complete on this side: it no longer counts against the limit. */
  private finishExchange(exchange: HttpExchange): void {
    this.exchanges.delete(exchange.id);
    exchange.abort.abort();
  }

  /**
   * Ends an exchange that did not complete: a visitor still waiting for the head gets the failure, a body being
   * streamed breaks off, and (unless the agent ended it) the agent is told to abandon the stream.
   */
  private failExchange(exchange: HttpExchange, code: string, message: string, tellAgent = true): void {
    if (!this.exchanges.has(exchange.id)) return;
    this.finishExchange(exchange);
    if (tellAgent) this.sendFrame(frameTypes.RESET, exchange.id, 0, jsonPayload({ code: code === "timeout" ? "timeout" : "cancelled", message: message.slice(0, 1000) }));
    const failureKind: TunnelFailure = code === "refused" ? "busy" : code === "timeout" ? "timeout" : code === "unknown_target" || code === "unreachable" ? "unreachable" : "offline";
    exchange.head.reject(new ExchangeError(failureKind, message));
    exchange.inbound?.discard();
  }

  // ---------------------------------------------------------------- helpers

  private readyTunnel(): WebSocket | undefined {
    return this.ctx.getWebSockets("tunnel").find((ws) => ws.readyState === WebSocket.OPEN && (attachmentOf(ws) as Extract<Attachment, { kind: "tunnel" }>).ready);
  }

  /** The connection credit for a tunnel socket: everything sent on it shares one window, reset with each new socket. */
  private creditFor(ws: WebSocket): Credit {
    if (this.creditSocket !== ws) {
      this.creditSocket = ws;
      this.creditOwed.reset();
      this.connectionCredit.spend(this.connectionCredit.value);
      const attachment = attachmentOf(ws);
      this.connectionCredit.grant(attachment.kind === "tunnel" ? attachment.connectionWindow : CONNECTION_WINDOW_BYTES);
    }
    return this.connectionCredit;
  }

  private visitorSocket(streamId: number): WebSocket | undefined {
    return this.ctx.getWebSockets(`stream:${streamId}`).find((ws) => ws.readyState === WebSocket.OPEN);
  }

  /** Stream ids grow from the highest one a relayed WebSocket still uses (those survive hibernation; the counter does not). */
  private allocateStreamId(): number {
    if (this.nextStreamId === 0) {
      let highest = 0;
      for (const ws of this.ctx.getWebSockets("client")) {
        const attachment = attachmentOf(ws);
        if (attachment.kind === "client") highest = Math.max(highest, attachment.streamId);
      }
      this.nextStreamId = highest + 1;
    }
    const id = this.nextStreamId;
    this.nextStreamId = id >= 0xffff_fff0 ? 1 : id + 1;
    return id;
  }

  private sendFrame(type: FrameType, streamId: number, flags: number, payload?: Uint8Array): void {
    const ws = this.readyTunnel();
    if (!ws) return;
    try {
      ws.send(encodeFrame(type, streamId, flags, payload));
    } catch {
      // closing; the close handler ends the exchanges
    }
  }

  private sendText(ws: WebSocket, message: TunnelReady | TunnelError): void {
    try {
      ws.send(JSON.stringify(message));
    } catch {
      // closing
    }
  }

  private closeTunnel(ws: WebSocket, code: number, reason: string): void {
    const attachment = attachmentOf(ws);
    if (attachment.kind === "tunnel") this.tunnelGone(ws, attachment.connectionId);
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  private maxExchanges(): number {
    return getConfig(this.env).PREVIEW_MAX_EXCHANGES;
  }

  private logger(): Logger {
    const level = ["debug", "info", "warn", "error"].includes(this.env.LOG_LEVEL) ? (this.env.LOG_LEVEL as LogLevel) : "info";
    return new Logger(level, { component: "preview_tunnel" });
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

class ExchangeError extends Error {
  readonly failure: TunnelFailure;
  constructor(failure: TunnelFailure, message: string) {
    super(message);
    this.failure = failure;
  }
}

function attachmentOf(ws: WebSocket): Attachment {
  return ws.deserializeAttachment() as Attachment;
}

/** A marked answer the Worker turns into the visitor's page (HTML or the API's error shape). */
function failure(kind: TunnelFailure, message: string): Response {
  const status = { offline: 502, busy: 503, timeout: 504, unreachable: 502 }[kind];
  return new Response(message, { status, headers: { [TUNNEL_ERROR_HEADER]: kind, "Content-Type": "text/plain; charset=utf-8" } });
}
