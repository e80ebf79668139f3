// The agent's end of the preview tunnel (agent protocol v1.1, docs/agent-protocol.md section 9): a WebSocket to
// <coreUrl>/v1/agent/tunnel, separate from the control connection so heartbeats, logs and status never wait behind
// preview traffic. Core sends request heads; the agent asks `resolveTarget` where the named {service, port} lives
// (never an address the request names), performs the exchange against it, and streams the response back within the
// credit Core grants. Web-standard APIs only, so the same module runs in the real agent and the simulator (Node 24)
// and inside workerd tests.
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
  TUNNEL_PING_INTERVAL_MS,
  TUNNEL_PROTOCOL_VERSION,
  closableCode,
  decodeFrame,
  encodeFrame,
  forwardableHeaders,
  frameTypes,
  jsonPayload,
  parsePayload,
  requestHead,
  sendBody,
  tunnelCloseCodes,
  windowUpdateBytes,
  windowUpdatePayload,
  wsClose,
  type FrameType,
  type RequestHead,
  type ResetCode,
  type TunnelTarget,
} from "../../../src/agents/tunnel-protocol.ts";

export type { TunnelTarget } from "../../../src/agents/tunnel-protocol.ts";

export interface UpstreamRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers: [string, string][];
  body: ReadableStream<Uint8Array> | null;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  headers: [string, string][];
  /** Null when the response has no body. */
  body: ReadableStream<Uint8Array> | null;
}

/** Where one exposed {service, port} is reached: an HTTP server and its WebSockets. */
export interface Upstream {
  request(request: UpstreamRequest): Promise<UpstreamResponse>;
  /** Opens a WebSocket to the app; rejects when the app refuses it. */
  webSocket(request: { path: string; headers: [string, string][]; protocols: string[]; signal: AbortSignal }): Promise<{ socket: WebSocket; protocol: string }>;
}

/**
 * Maps a target Core names to where it runs: the real agent answers `127.0.0.1:<published port>` or the service's
 * compose-network address, and null for anything its last DEPLOY did not expose.
 */
export type ResolveTarget = (target: TunnelTarget) => Upstream | null | Promise<Upstream | null>;

export interface TunnelOptions {
  /** Core's base URL; the tunnel dials <coreUrl>/v1/agent/tunnel. */
  coreUrl: string;
  /** The agent's token (the same one as the control connection). */
  token: string;
  /** Defaults to the id inside the token. */
  agentId?: string;
  resolveTarget: ResolveTarget;
  /** Opens the socket; by default Node's global WebSocket. Tests inside workerd pass one that goes through the Worker. */
  openSocket?: (url: string, headers: Record<string, string>) => Promise<WebSocket>;
  log?: (line: string) => void;
  /** Stop after this long without reaching Core (default 15 minutes, like the control connection). */
  giveUpAfterSeconds?: number;
}

export interface TunnelStats {
  connects: number;
  activeStreams: number;
  exchanges: number;
  bytesIn: number;
  bytesOut: number;
}

export interface Tunnel {
  agentId: string;
  /** Resolves when Core has accepted the tunnel (TUNNEL_READY) for the first time. */
  ready: Promise<void>;
  stop(): Promise<void>;
  /** Resolves when the tunnel has stopped: stop(), a final refusal (revoked, version) or giving up. */
  done: Promise<void>;
  stats(): TunnelStats;
}

const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
/** The socket is considered dead after this long without any frame from Core (Core answers every ping). */
const SILENCE_LIMIT_MS = TUNNEL_PING_INTERVAL_MS * 2.5;
const FINAL_CLOSE_CODES = new Set<number>([tunnelCloseCodes.authFailed, tunnelCloseCodes.versionMismatch, tunnelCloseCodes.revoked]);

/** Node's WebSocket (undici) takes headers; the Workers types in this project do not know that. */
const WebSocketWithHeaders = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;
const openWithHeaders = async (url: string, headers: Record<string, string>): Promise<WebSocket> => new WebSocketWithHeaders(url, { headers });

interface Stream {
  id: number;
  abort: AbortController;
  /** Credit Core granted for this stream's response body. */
  credit: Credit;
  /** The request body coming from Core, when there is one. */
  inbound: InboundBody | null;
  /** The app's socket, for a WebSocket stream. */
  socket: WebSocket | null;
}

export function startTunnel(options: TunnelOptions): Tunnel {
  const agentId = options.agentId ?? agentIdOf(options.token);
  const log = options.log ?? ((line: string) => console.log(line));
  const say = (text: string) => log(`[tunnel ${agentId}] ${text}`);
  const giveUpMs = (options.giveUpAfterSeconds ?? 15 * 60) * 1000;
  const url = `${options.coreUrl.replace(/^http/, "ws").replace(/\/+$/, "")}/v1/agent/tunnel`;
  const stats: TunnelStats = { connects: 0, activeStreams: 0, exchanges: 0, bytesIn: 0, bytesOut: 0 };

  let stopped = false;
  let failures = 0;
  let lastContact = Date.now();
  let current: Session | null = null;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));

  /** One connection: its socket, its streams and its credit. A reconnect starts a new session from scratch. */
  class Session {
    readonly streams = new Map<number, Stream>();
    /** Credit Core granted for everything this agent sends. */
    readonly connectionCredit = new Credit(0);
    /** Connection credit owed to Core for request-body bytes no stream needs credit for any more. */
    readonly creditOwed = new ConnectionCreditReturn((bytes) => this.send(frameTypes.WINDOW_UPDATE, 0, 0, windowUpdatePayload(bytes)));
    streamWindow = 0;
    maxStreams = 0;
    isReady = false;
    private lastFrameAt = Date.now();
    private readonly pinger: ReturnType<typeof setInterval>;
    readonly socket: WebSocket;

    constructor(socket: WebSocket) {
      this.socket = socket;
      this.pinger = setInterval(() => this.keepAlive(), TUNNEL_PING_INTERVAL_MS);
    }

    private keepAlive(): void {
      if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
        say("no answer from Core; reconnecting");
        this.socket.close(1000, "no answer to pings");
        this.closed(1006, "silent");
        return;
      }
      this.sendText(TUNNEL_PING);
    }

    sendText(text: string): void {
      if (this.socket.readyState === WebSocket.OPEN) this.socket.send(text);
    }

    send(type: FrameType, streamId: number, flags: number, payload?: Uint8Array): void {
      if (this.socket.readyState !== WebSocket.OPEN) return;
      if (type === frameTypes.DATA && payload) stats.bytesOut += payload.byteLength;
      this.socket.send(encodeFrame(type, streamId, flags, payload));
    }

    reset(streamId: number, code: ResetCode, message: string): void {
      this.send(frameTypes.RESET, streamId, 0, jsonPayload({ code, message }));
      this.finish(streamId);
    }

    /** Forgets a stream; request-body bytes it never consumed go back to Core's connection credit (onDropped). */
    finish(streamId: number): void {
      const stream = this.streams.get(streamId);
      if (!stream) return;
      this.streams.delete(streamId);
      stats.activeStreams = this.streams.size;
      stream.abort.abort();
      stream.inbound?.discard();
    }

    onMessage(data: unknown): void {
      this.lastFrameAt = Date.now();
      lastContact = this.lastFrameAt;
      if (typeof data === "string") return this.onText(data);
      if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) return;
      const frame = decodeFrame(data instanceof ArrayBuffer ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (typeof frame === "string") {
        say(`ignored a bad frame from Core: ${frame}`);
        return;
      }
      if (!this.isReady) return;
      switch (frame.type) {
        case frameTypes.REQUEST:
          return void this.onRequest(frame.streamId, frame.flags, frame.payload);
        case frameTypes.DATA:
          return this.onData(frame.streamId, frame.flags, frame.payload);
        case frameTypes.WINDOW_UPDATE: {
          const bytes = windowUpdateBytes(frame.payload);
          if (typeof bytes === "string") return;
          this.connectionCredit.grant(bytes);
          if (frame.streamId !== 0) this.streams.get(frame.streamId)?.credit.grant(bytes);
          return;
        }
        case frameTypes.RESET:
          return this.finish(frame.streamId);
        case frameTypes.WS_MESSAGE: {
          const socket = this.streams.get(frame.streamId)?.socket;
          if (!socket || socket.readyState !== WebSocket.OPEN) return;
          socket.send(frame.flags & FLAG_BINARY ? frame.payload.slice() : new TextDecoder().decode(frame.payload));
          return;
        }
        case frameTypes.WS_CLOSE: {
          const stream = this.streams.get(frame.streamId);
          const close = parsePayload(wsClose, frame.payload, "WS_CLOSE");
          if (stream?.socket && typeof close !== "string") stream.socket.close(closableCode(close.code), close.reason);
          return this.finish(frame.streamId);
        }
        case frameTypes.RESPONSE:
          return this.reset(frame.streamId, "protocol_error", "RESPONSE goes from the agent to Core");
      }
    }

    private onText(text: string): void {
      let message: { type?: unknown; stream_window?: unknown; connection_window?: unknown; max_streams?: unknown; code?: unknown; message?: unknown };
      try {
        message = JSON.parse(text) as typeof message;
      } catch {
        return;
      }
      if (message.type === "TUNNEL_READY") {
        this.streamWindow = Number(message.stream_window) || STREAM_WINDOW_BYTES;
        this.connectionCredit.grant(Number(message.connection_window) || CONNECTION_WINDOW_BYTES);
        this.maxStreams = Number(message.max_streams) || 1;
        this.isReady = true;
        failures = 0;
        stats.connects++;
        say(`tunnel ready (up to ${this.maxStreams} exchanges at once)`);
        resolveReady();
      } else if (message.type === "ERROR") {
        say(`Core refused the tunnel: ${String(message.code)}: ${String(message.message)}`);
      }
    }

    private async onRequest(streamId: number, flags: number, payload: Uint8Array): Promise<void> {
      if (this.streams.has(streamId)) return this.reset(streamId, "protocol_error", "stream id already in use");
      const head = parsePayload(requestHead, payload, "REQUEST");
      if (typeof head === "string") {
        this.send(frameTypes.RESET, streamId, 0, jsonPayload({ code: "protocol_error", message: head }));
        return;
      }
      if (this.streams.size >= this.maxStreams) {
        this.send(frameTypes.RESET, streamId, 0, jsonPayload({ code: "refused", message: `this agent already serves ${this.maxStreams} exchanges` }));
        return;
      }
      const hasBody = !(flags & FLAG_END_STREAM) && !head.websocket;
      // Registered before any await: DATA for this stream may arrive while the target is being resolved.
      const stream: Stream = {
        id: streamId,
        abort: new AbortController(),
        credit: new Credit(this.streamWindow),
        inbound: hasBody
          ? new InboundBody(
              STREAM_WINDOW_BYTES,
              (bytes, final) => (final ? this.creditOwed.add(bytes) : this.send(frameTypes.WINDOW_UPDATE, streamId, 0, windowUpdatePayload(bytes))),
              (dropped) => this.creditOwed.add(dropped),
            )
          : null,
        socket: null,
      };
      this.streams.set(streamId, stream);
      stats.activeStreams = this.streams.size;
      stats.exchanges++;

      let upstream: Upstream | null;
      try {
        upstream = await options.resolveTarget(head.target);
      } catch {
        upstream = null;
      }
      if (!this.streams.has(streamId)) return;
      if (!upstream) return this.reset(streamId, "unknown_target", `${head.target.service}:${head.target.port} is not exposed by this preview`);
      try {
        if (head.websocket) await this.openWebSocket(stream, upstream, head);
        else await this.exchange(stream, upstream, head);
      } catch (error) {
        if (this.streams.has(streamId)) this.reset(streamId, "unreachable", describe(error));
      }
    }

    private async exchange(stream: Stream, upstream: Upstream, head: RequestHead): Promise<void> {
      const response = await upstream.request({
        method: head.method,
        path: head.path,
        headers: forwardableHeaders(head.headers, false),
        body: stream.inbound?.stream ?? null,
        signal: stream.abort.signal,
      });
      if (!this.streams.has(stream.id)) {
        await response.body?.cancel().catch(() => {});
        return;
      }
      const headers = forwardableHeaders(response.headers, false);
      if (!response.body) {
        this.send(frameTypes.RESPONSE, stream.id, FLAG_END_STREAM, jsonPayload({ status: response.status, headers }));
        return this.finish(stream.id);
      }
      this.send(frameTypes.RESPONSE, stream.id, 0, jsonPayload({ status: response.status, headers }));
      await sendBody(
        response.body,
        { stream: stream.credit, connection: this.connectionCredit },
        (chunk, end) => this.send(frameTypes.DATA, stream.id, end ? FLAG_END_STREAM : 0, chunk),
        stream.abort.signal,
      );
      this.finish(stream.id);
    }

    private async openWebSocket(stream: Stream, upstream: Upstream, head: RequestHead): Promise<void> {
      const { socket, protocol } = await upstream.webSocket({
        path: head.path,
        headers: forwardableHeaders(head.headers, true),
        protocols: head.websocket?.protocols ?? [],
        signal: stream.abort.signal,
      });
      if (!this.streams.has(stream.id)) {
        socket.close(1000, "the visitor went away");
        return;
      }
      stream.socket = socket;
      socket.binaryType = "arraybuffer";
      socket.addEventListener("message", (event: MessageEvent) => {
        const data = event.data as unknown;
        const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : null;
        if (!bytes) return;
        if (bytes.byteLength > MAX_WS_MESSAGE_BYTES) {
          socket.close(1000, `message over ${MAX_WS_MESSAGE_BYTES} bytes: too big for the preview tunnel`);
          return;
        }
        this.send(frameTypes.WS_MESSAGE, stream.id, typeof data === "string" ? 0 : FLAG_BINARY, bytes);
      });
      socket.addEventListener("close", (event: CloseEvent) => {
        if (!this.streams.has(stream.id)) return;
        this.send(frameTypes.WS_CLOSE, stream.id, 0, jsonPayload({ code: closableCode(event.code), reason: event.reason.slice(0, 123) }));
        this.finish(stream.id);
      });
      this.send(frameTypes.RESPONSE, stream.id, 0, jsonPayload({ status: 101, headers: protocol ? [["sec-websocket-protocol", protocol]] : [] }));
    }

    private onData(streamId: number, flags: number, payload: Uint8Array): void {
      stats.bytesIn += payload.byteLength;
      const inbound = this.streams.get(streamId)?.inbound;
      if (!inbound) {
        // A stream already finished: the bytes still counted against the connection window.
        this.creditOwed.add(payload.byteLength);
        return;
      }
      if (!inbound.push(payload)) return this.reset(streamId, "protocol_error", "DATA beyond the stream window");
      if (flags & FLAG_END_STREAM) inbound.end();
    }

    /** The socket is gone: every stream with it. */
    closed(code: number, reason: string): void {
      clearInterval(this.pinger);
      for (const id of [...this.streams.keys()]) {
        const socket = this.streams.get(id)?.socket;
        if (socket && socket.readyState === WebSocket.OPEN) socket.close(1000, "preview tunnel lost");
        this.finish(id);
      }
      if (current !== this) return;
      current = null;
      if (stopped) return finish();
      if (FINAL_CLOSE_CODES.has(code)) {
        say(`Core closed the tunnel for good (${code} ${reason}); stopping`);
        return void stop();
      }
      scheduleReconnect(code);
    }
  }

  async function connect(): Promise<void> {
    if (stopped) return;
    let socket: WebSocket;
    try {
      socket = await (options.openSocket ?? openWithHeaders)(url, { Authorization: `Bearer ${options.token}` });
    } catch (error) {
      say(`could not connect: ${describe(error)}`);
      return scheduleReconnect(1006);
    }
    if (stopped) {
      socket.close(1000, "agent stopping");
      return;
    }
    socket.binaryType = "arraybuffer";
    const session = new Session(socket);
    current = session;
    const hello = () =>
      socket.send(
        JSON.stringify({
          type: "TUNNEL_HELLO",
          version: TUNNEL_PROTOCOL_VERSION,
          agent_id: agentId,
          stream_window: STREAM_WINDOW_BYTES,
          connection_window: CONNECTION_WINDOW_BYTES,
          max_frame_bytes: DATA_CHUNK_BYTES,
        }),
      );
    if (socket.readyState === WebSocket.OPEN) hello();
    else socket.addEventListener("open", hello);
    socket.addEventListener("message", (event: MessageEvent) => session.onMessage(event.data));
    socket.addEventListener("close", (event: CloseEvent) => session.closed(event.code, event.reason));
    socket.addEventListener("error", () => {
      // A close event follows.
    });
  }

  function scheduleReconnect(code: number): void {
    if (Date.now() - lastContact > giveUpMs) {
      say(`no contact with Core for ${Math.round(giveUpMs / 60_000)} minutes: stopping the tunnel`);
      return void stop();
    }
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** failures);
    failures++;
    const delay = Math.round(cap * (0.5 + Math.random() / 2));
    say(`tunnel closed (${code}); reconnecting in ${(delay / 1000).toFixed(1)} s`);
    reconnectTimer = setTimeout(() => void connect(), delay);
  }

  let finished = false;
  function finish(): void {
    if (finished) return;
    finished = true;
    clearTimeout(reconnectTimer);
    resolveDone();
  }

  async function stop(): Promise<void> {
    if (!stopped) {
      stopped = true;
      clearTimeout(reconnectTimer);
      const session = current;
      if (session && session.socket.readyState !== WebSocket.CLOSED) {
        session.socket.close(1000, "agent stopping");
        session.closed(1000, "agent stopping");
      }
      finish();
    }
    await done;
  }

  void connect();
  return { agentId, ready, stop, done, stats: () => ({ ...stats }) };
}

function agentIdOf(token: string): string {
  const match = /^stg_agt_([0-9a-z]{16})_[0-9a-f]{64}$/.exec(token);
  if (!match) throw new Error("not an agent token (stg_agt_<id>_<secret>)");
  return `agt_${match[1]}`;
}

/** An error's message for Core and logs: never a body, at most 200 characters. */
function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 200);
}
