import * as z from "zod";

/**
 * Agent protocol v1.1, the preview tunnel (docs/agent-protocol.md section 9): a second WebSocket per preview agent,
 * `GET /v1/agent/tunnel`, carrying HTTP exchanges between Core (the PreviewTunnel Durable Object) and the agent.
 * Shared by both sides: the Durable Object in workerd and the agent in Node 24, so only web-standard APIs here.
 *
 * Binary frames: a 6-byte header (type, flags, stream id as uint32 big-endian) and a payload. Many exchanges are
 * multiplexed by stream id; bodies travel in DATA frames of at most DATA_CHUNK_BYTES under credit-based flow control
 * (per stream and per connection), so neither side ever holds more than a window of any body in memory.
 */

export const TUNNEL_PROTOCOL_VERSION = "1.1.0";
export const FRAME_HEADER_BYTES = 6;
/** A DATA frame carries at most this much body. */
export const DATA_CHUNK_BYTES = 64 * 1024;
/** What a receiver lets one stream have in flight before it is consumed. */
export const STREAM_WINDOW_BYTES = 1024 * 1024;
/** A receiver returns credit in batches of at least this much (well under a window, so a sender never stalls on it). */
export const CREDIT_BATCH_BYTES = 32 * 1024;
/** What a receiver lets all streams together have in flight: its memory bound for bodies. */
export const CONNECTION_WINDOW_BYTES = 32 * 1024 * 1024;
/** A WebSocket message relayed through the tunnel is at most this large (a larger one closes that WebSocket). */
export const MAX_WS_MESSAGE_BYTES = 1024 * 1024;
/** JSON payloads (REQUEST, RESPONSE heads) are at most this large. */
export const MAX_HEAD_BYTES = 256 * 1024;
/** Text keepalive the agent sends; Core's Durable Object answers it without waking (WebSocket auto-response). */
export const TUNNEL_PING = '{"type":"TUNNEL_PING"}';
export const TUNNEL_PONG = '{"type":"TUNNEL_PONG"}';
export const TUNNEL_PING_INTERVAL_MS = 20_000;

export const frameTypes = {
  /** Core → agent: a request head (JSON `RequestHead`); END_STREAM when it has no body. */
  REQUEST: 1,
  /** agent → Core: the response head (JSON `ResponseHead`); END_STREAM when it has no body. */
  RESPONSE: 2,
  /** Both ways: body bytes; END_STREAM on the last (possibly empty) one. */
  DATA: 3,
  /** Both ways: a uint32 credit. Stream id 0: connection only; any other: that stream and the connection. */
  WINDOW_UPDATE: 4,
  /** Both ways: abandon the stream (JSON `Reset`). */
  RESET: 5,
  /** Both ways, on a WebSocket stream: one message; the BINARY flag marks binary, else UTF-8 text. */
  WS_MESSAGE: 6,
  /** Both ways, on a WebSocket stream: the socket closed (JSON `WsClose`). */
  WS_CLOSE: 7,
} as const;
export type FrameType = (typeof frameTypes)[keyof typeof frameTypes];

export const FLAG_END_STREAM = 1;
export const FLAG_BINARY = 2;

export interface Frame {
  type: FrameType;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

const knownTypes = new Set<number>(Object.values(frameTypes));

export function encodeFrame(type: FrameType, streamId: number, flags: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  const view = new DataView(frame.buffer);
  view.setUint8(0, type);
  view.setUint8(1, flags);
  view.setUint32(2, streamId);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** Decodes one binary message; a string names what is wrong with it. */
export function decodeFrame(data: ArrayBuffer | Uint8Array): Frame | string {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.byteLength < FRAME_HEADER_BYTES) return `a frame has at least ${FRAME_HEADER_BYTES} bytes`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint8(0);
  if (!knownTypes.has(type)) return `unknown frame type ${type}`;
  const streamId = view.getUint32(2);
  if (streamId === 0 && type !== frameTypes.WINDOW_UPDATE) return "only WINDOW_UPDATE may use stream 0";
  return { type: type as FrameType, flags: view.getUint8(1), streamId, payload: bytes.subarray(FRAME_HEADER_BYTES) };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function jsonPayload(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Parses a JSON payload against its schema; a string names the problem. */
export function parsePayload<T>(schema: z.ZodType<T>, payload: Uint8Array, what: string): T | string {
  if (payload.byteLength > MAX_HEAD_BYTES) return `${what} exceeds ${MAX_HEAD_BYTES} bytes`;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch {
    return `${what} is not valid JSON`;
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  return `invalid ${what}: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(payload)"}: ${i.message}`).join("; ")}`;
}

export function windowUpdatePayload(bytes: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, bytes);
  return payload;
}

export function windowUpdateBytes(payload: Uint8Array): number | string {
  if (payload.byteLength !== 4) return "WINDOW_UPDATE carries a 4-byte credit";
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
}

// ---- JSON payloads

const headerPairs = z.array(z.tuple([z.string().min(1).max(256), z.string().max(16 * 1024)])).max(256);

/** Which compose service and container port an exchange is for; the agent alone maps it to an address. */
export const tunnelTarget = z.object({ service: z.string().min(1).max(128), port: z.number().int().min(1).max(65535) });
export type TunnelTarget = z.infer<typeof tunnelTarget>;

export const requestHead = z.object({
  method: z.string().regex(/^[A-Z]{1,16}$/, "must be an HTTP method"),
  /** Path and query, as the visitor sent them (without Stagely's own parameters). */
  path: z.string().startsWith("/").max(16 * 1024),
  headers: headerPairs,
  target: tunnelTarget,
  /** Present for a WebSocket upgrade: the subprotocols the client offered. */
  websocket: z.object({ protocols: z.array(z.string().max(256)).max(32) }).nullish(),
});
export type RequestHead = z.infer<typeof requestHead>;

export const responseHead = z.object({
  status: z.number().int().min(101).max(599),
  headers: headerPairs,
});
export type ResponseHead = z.infer<typeof responseHead>;

export const resetCodes = [
  /** The other side gave up on the exchange (visitor went away, agent stopping). */
  "cancelled",
  /** The app did not answer in time. */
  "timeout",
  /** The target is not one this preview exposes. */
  "unknown_target",
  /** The app could not be reached (connection refused, reset). */
  "unreachable",
  /** Too many exchanges at once. */
  "refused",
  /** A frame broke the protocol (e.g. more DATA than the window allowed). */
  "protocol_error",
] as const;
export type ResetCode = (typeof resetCodes)[number];
export const reset = z.object({ code: z.enum(resetCodes), message: z.string().max(1024) });
export type Reset = z.infer<typeof reset>;

export const wsClose = z.object({ code: z.number().int().min(1000).max(4999), reason: z.string().max(123) });
export type WsClose = z.infer<typeof wsClose>;

/** A code a WebSocket endpoint may send in a close frame (1005, 1006 and 1015 only describe what happened: 1000). */
export function closableCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

// ---- text frames (JSON) on the tunnel socket

export const tunnelHello = z.object({
  type: z.literal("TUNNEL_HELLO"),
  /** The agent's protocol version: major 1, minor at least 1. */
  version: z.string().regex(/^1\.([1-9]\d*)\.\d+([-+][0-9A-Za-z.-]+)?$/, "must be a 1.x version with x >= 1, like 1.1.0"),
  agent_id: z.string().regex(/^agt_[0-9a-z]{16}$/, "must be an agent id"),
});

export interface TunnelReady {
  type: "TUNNEL_READY";
  stream_window: number;
  connection_window: number;
  max_frame_bytes: number;
  max_streams: number;
}

export interface TunnelError {
  type: "ERROR";
  code: "BAD_MESSAGE" | "VERSION_MISMATCH" | "AUTH_FAILED";
  message: string;
}

/** Close codes on the tunnel socket (the control socket's meanings, docs/agent-protocol.md section 2). */
export const tunnelCloseCodes = { superseded: 4000, authFailed: 4001, versionMismatch: 4002, revoked: 4003 } as const;

// ---- flow control

/**
 * Send-side credit for one window (a stream's or the connection's): what the receiver has said it can take.
 * `changed()` resolves at the next grant, so a sender can wait for room.
 */
export class Credit {
  private available: number;
  private wake: (() => void)[] = [];

  constructor(initial: number) {
    this.available = initial;
  }

  get value(): number {
    return this.available;
  }

  grant(bytes: number): void {
    this.available += bytes;
    for (const resolve of this.wake.splice(0)) resolve();
  }

  spend(bytes: number): void {
    this.available -= bytes;
  }

  changed(): Promise<void> {
    return new Promise((resolve) => this.wake.push(resolve));
  }
}

/**
 * Waits until both the stream and the connection have credit, then spends up to `max` bytes of both. Rejects when
 * `signal` aborts (the stream ended meanwhile).
 */
export async function reserve(stream: Credit, connection: Credit, max: number, signal: AbortSignal): Promise<number> {
  while (stream.value <= 0 || connection.value <= 0) {
    signal.throwIfAborted();
    let onAbort!: () => void;
    const aborted = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await Promise.race([stream.changed(), connection.changed(), aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
  signal.throwIfAborted();
  const bytes = Math.min(max, stream.value, connection.value);
  stream.spend(bytes);
  connection.spend(bytes);
  return bytes;
}

/**
 * Sends a body as DATA frames within the credit the receiver grants: reads ahead at most one chunk, so memory stays
 * at two chunks. The last chunk carries END_STREAM when the body's end is known within one turn of the event loop
 * after it (a small response then costs one frame, and streamed data is never held back); otherwise an empty DATA
 * frame ends it. Byte streams (the runtime's own request bodies) are read into DATA_CHUNK_BYTES buffers: their default
 * reader hands out 4 KiB pieces, and every frame has a fixed cost.
 */
export async function sendBody(
  body: ReadableStream<Uint8Array>,
  credit: { stream: Credit; connection: Credit },
  sendData: (chunk: Uint8Array, end: boolean) => void,
  signal: AbortSignal,
): Promise<void> {
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // not a byte stream
  }
  const reader = byob ?? body.getReader();
  const read = (): Promise<ReadableStreamReadResult<Uint8Array>> =>
    byob ? (byob.read(new Uint8Array(DATA_CHUNK_BYTES)) as Promise<ReadableStreamReadResult<Uint8Array>>) : (reader as ReadableStreamDefaultReader<Uint8Array>).read();
  const stop = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", stop, { once: true });
  const nextTurn = () => new Promise<"later">((resolve) => setTimeout(() => resolve("later"), 0));
  try {
    // Wait for room before pulling from the source (backpressure reaches the sender of the body).
    await reserveNothing(credit, signal);
    let current = await read();
    while (!current.done) {
      const following = read();
      const known = await Promise.race([following, nextTurn()]);
      const last = known !== "later" && known.done;
      const value = current.value;
      let offset = 0;
      while (offset < value.byteLength) {
        const bytes = await reserve(credit.stream, credit.connection, Math.min(DATA_CHUNK_BYTES, value.byteLength - offset), signal);
        offset += bytes;
        sendData(value.subarray(offset - bytes, offset), last && offset === value.byteLength);
      }
      if (last) return;
      await reserveNothing(credit, signal);
      current = known === "later" ? await following : known;
    }
    signal.throwIfAborted();
    sendData(new Uint8Array(0), true);
  } finally {
    signal.removeEventListener("abort", stop);
    reader.releaseLock();
  }
}

/** Waits until both windows have room, without spending any. */
async function reserveNothing(credit: { stream: Credit; connection: Credit }, signal: AbortSignal): Promise<void> {
  await reserve(credit.stream, credit.connection, 0, signal);
}

/**
 * Connection credit a receiver owes its sender for bytes no stream needs credit for any more (a finished stream's
 * last bytes, dropped bytes), returned as WINDOW_UPDATE on stream 0 in batches of CREDIT_BATCH_BYTES. Never more
 * than one batch is owed, far below a connection window, so a sender never stalls on it.
 */
export class ConnectionCreditReturn {
  private owed = 0;
  private readonly send: (bytes: number) => void;

  constructor(send: (bytes: number) => void) {
    this.send = send;
  }

  add(bytes: number): void {
    this.owed += bytes;
    if (this.owed >= CREDIT_BATCH_BYTES) {
      this.send(this.owed);
      this.owed = 0;
    }
  }

  /** A new connection starts with a full window: nothing is owed on it. */
  reset(): void {
    this.owed = 0;
  }
}

/**
 * The receiving end of a body: DATA frames are queued as they arrive and handed to the reader one at a time; credit
 * for a chunk goes back to the sender (`onConsumed`) only when the reader takes it, so a slow reader holds at most
 * one stream window. `final` marks credit for the body's last bytes (the stream needs no more: only the connection
 * does). Bytes that will never be read (the reader cancelled, the exchange was abandoned) are reported to
 * `onDropped` so their connection credit can go back too. Pushing beyond the window is the sender's protocol error.
 */
export class InboundBody {
  readonly stream: ReadableStream<Uint8Array>;
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private dropping = false;
  private unreported = 0;
  private readonly window: number;
  private readonly onConsumed: (bytes: number, final: boolean) => void;
  private readonly onDropped: (bytes: number) => void;

  constructor(window: number, onConsumed: (bytes: number, final: boolean) => void, onDropped: (bytes: number) => void) {
    this.window = window;
    this.onConsumed = onConsumed;
    this.onDropped = onDropped;
    this.stream = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          while (this.queue.length === 0 && !this.ended && !this.failure) {
            await new Promise<void>((resolve) => (this.wake = resolve));
          }
          const chunk = this.queue.shift();
          if (chunk) {
            this.queuedBytes -= chunk.byteLength;
            controller.enqueue(chunk);
            // Credit goes back in batches, and at once when the reader has caught up (so the sender never waits
            // on credit that is owed).
            this.unreported += chunk.byteLength;
            if (this.unreported >= CREDIT_BATCH_BYTES || this.queue.length === 0) {
              this.onConsumed(this.unreported, this.ended && this.queue.length === 0);
              this.unreported = 0;
            }
            return;
          }
          if (this.failure) controller.error(this.failure);
          else controller.close();
        },
        cancel: () => this.dropAll(),
      },
      { highWaterMark: 0 },
    );
  }

  /** False when the chunk overflows the window (the sender ignored flow control). */
  push(chunk: Uint8Array): boolean {
    if (this.dropping || this.ended || this.failure) {
      if (chunk.byteLength > 0) this.onDropped(chunk.byteLength);
      return true;
    }
    if (this.queuedBytes + chunk.byteLength > this.window) return false;
    if (chunk.byteLength > 0) {
      // A view, not a copy: every WebSocket message arrives in a buffer of its own (workerd and Node alike).
      this.queue.push(chunk);
      this.queuedBytes += chunk.byteLength;
    }
    this.notify();
    return true;
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  /** The exchange is over before the reader finished: drops what is queued and ends the reader with an error. */
  discard(): void {
    if (!this.failure && (!this.ended || this.queuedBytes > 0)) this.failure = new Error("the exchange was abandoned");
    this.dropAll();
    this.notify();
  }

  private dropAll(): void {
    this.dropping = true;
    const dropped = this.queuedBytes;
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (dropped > 0) this.onDropped(dropped);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

// ---- headers

/** Hop-by-hop headers (RFC 9110 section 7.6.1): they describe one connection and are never forwarded. */
const hopByHop = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"]);
/** Headers the WebSocket handshake uses, which each side's WebSocket client sets itself. */
const websocketHandshake = new Set(["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept", "sec-websocket-protocol"]);

/** Header pairs to forward: hop-by-hop headers (and, for a WebSocket, its handshake headers) removed. */
export function forwardableHeaders(pairs: Iterable<[string, string]>, websocket: boolean): [string, string][] {
  const connectionNamed = new Set<string>();
  const all = [...pairs];
  for (const [name, value] of all) {
    if (name.toLowerCase() === "connection") for (const token of value.split(",")) connectionNamed.add(token.trim().toLowerCase());
  }
  return all.filter(([name]) => {
    const lower = name.toLowerCase();
    return !hopByHop.has(lower) && !connectionNamed.has(lower) && !(websocket && websocketHandshake.has(lower));
  });
}
