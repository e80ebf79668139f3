import { describe, expect, it } from "vitest";
import {
  CREDIT_BATCH_BYTES,
  ConnectionCreditReturn,
  Credit,
  DATA_CHUNK_BYTES,
  FLAG_END_STREAM,
  InboundBody,
  decodeFrame,
  encodeFrame,
  forwardableHeaders,
  frameTypes,
  jsonPayload,
  parsePayload,
  requestHead,
  sendBody,
  windowUpdateBytes,
  windowUpdatePayload,
} from "./tunnel-protocol.ts";

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

function streamOf(chunks: Uint8Array[], delayMs = 0): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    async pull(controller) {
      if (delayMs && i > 0) await new Promise((r) => setTimeout(r, delayMs));
      if (i === chunks.length) return controller.close();
      controller.enqueue(chunks[i++]!);
    },
  });
}

describe("frames", () => {
  it("round-trip type, flags, stream id and payload", () => {
    const frame = decodeFrame(encodeFrame(frameTypes.DATA, 0xfffffff0, FLAG_END_STREAM, bytes(3, 7)));
    expect(frame).toEqual({ type: frameTypes.DATA, flags: FLAG_END_STREAM, streamId: 0xfffffff0, payload: bytes(3, 7) });
    expect(windowUpdateBytes(windowUpdatePayload(123_456))).toBe(123_456);
  });

  it("name what is wrong with a bad frame", () => {
    expect(decodeFrame(new Uint8Array(3))).toMatch(/at least 6 bytes/);
    expect(decodeFrame(encodeFrame(99 as never, 1, 0))).toMatch(/unknown frame type 99/);
    expect(decodeFrame(encodeFrame(frameTypes.DATA, 0, 0))).toMatch(/stream 0/);
    expect(windowUpdateBytes(bytes(3))).toMatch(/4-byte/);
    expect(parsePayload(requestHead, new TextEncoder().encode("{"), "REQUEST")).toMatch(/not valid JSON/);
    expect(parsePayload(requestHead, jsonPayload({ method: "GET", path: "x", headers: [], target: { service: "web", port: 0 } }), "REQUEST")).toMatch(/path|target/);
  });
});

describe("flow control", () => {
  it("an inbound body refuses more than its window, and returns credit in batches or when the reader catches up", async () => {
    const consumed: [number, boolean][] = [];
    const dropped: number[] = [];
    const inbound = new InboundBody(100_000, (n, final) => consumed.push([n, final]), (n) => dropped.push(n));
    expect(inbound.push(bytes(10_000))).toBe(true);
    expect(inbound.push(bytes(10_000))).toBe(true);
    expect(inbound.push(bytes(90_000))).toBe(false);
    const reader = inbound.stream.getReader();
    await reader.read();
    expect(consumed).toEqual([]); // 10 KB consumed, another chunk still queued: below the batch size
    await reader.read();
    expect(consumed).toEqual([[20_000, false]]); // caught up: everything owed goes back
    inbound.push(bytes(CREDIT_BATCH_BYTES));
    inbound.end();
    await reader.read();
    expect(consumed.at(-1)).toEqual([CREDIT_BATCH_BYTES, true]); // the body's last bytes: connection credit only
    expect((await reader.read()).done).toBe(true);
    expect(dropped).toEqual([]);
  });

  it("an abandoned body errors its reader and reports the bytes it dropped", async () => {
    const dropped: number[] = [];
    const inbound = new InboundBody(100_000, () => {}, (n) => dropped.push(n));
    inbound.push(bytes(5_000));
    inbound.discard();
    inbound.push(bytes(7)); // a frame already on its way
    expect(dropped).toEqual([5_000, 7]);
    await expect(inbound.stream.getReader().read()).rejects.toThrow(/abandoned/);
  });

  it("connection credit owed is returned in batches", () => {
    const sent: number[] = [];
    const owed = new ConnectionCreditReturn((n) => sent.push(n));
    owed.add(CREDIT_BATCH_BYTES - 1);
    expect(sent).toEqual([]);
    owed.add(2);
    expect(sent).toEqual([CREDIT_BATCH_BYTES + 1]);
  });

  it("sendBody splits into DATA_CHUNK_BYTES frames, marks the last one END_STREAM, and never runs ahead of credit", async () => {
    const frames: [number, boolean][] = [];
    const stream = new Credit(DATA_CHUNK_BYTES + 10);
    const connection = new Credit(10 * DATA_CHUNK_BYTES);
    const done = sendBody(streamOf([bytes(2 * DATA_CHUNK_BYTES + 5)]), { stream, connection }, (chunk, end) => frames.push([chunk.byteLength, end]), new AbortController().signal);
    await new Promise((r) => setTimeout(r, 20));
    expect(frames).toEqual([[DATA_CHUNK_BYTES, false], [10, false]]); // the stream window is spent: it waits
    stream.grant(DATA_CHUNK_BYTES);
    await done;
    expect(frames).toEqual([[DATA_CHUNK_BYTES, false], [10, false], [DATA_CHUNK_BYTES - 5, true]]);
    expect(connection.value).toBe(10 * DATA_CHUNK_BYTES - (2 * DATA_CHUNK_BYTES + 5));
  });

  it("sendBody sends streamed chunks as they come and ends with an empty frame when the end comes later", async () => {
    const frames: [number, boolean, number][] = [];
    const started = Date.now();
    await sendBody(streamOf([bytes(5), bytes(6)], 50), { stream: new Credit(1e6), connection: new Credit(1e6) }, (chunk, end) => frames.push([chunk.byteLength, end, Date.now() - started]), new AbortController().signal);
    expect(frames.map(([n, end]) => [n, end])).toEqual([[5, false], [6, false], [0, true]]);
    expect(frames[0]![2]).toBeLessThan(40); // not held back until the next chunk
  });
});

describe("forwardableHeaders", () => {
  it("drops hop-by-hop headers and those Connection names; for a WebSocket, the handshake headers too", () => {
    const headers: [string, string][] = [["Connection", "keep-alive, X-Hop"], ["X-Hop", "1"], ["Keep-Alive", "5"], ["Transfer-Encoding", "chunked"], ["Sec-WebSocket-Key", "k"], ["Cookie", "a=1"], ["Set-Cookie", "b"], ["Set-Cookie", "c"]];
    expect(forwardableHeaders(headers, false)).toEqual([["Sec-WebSocket-Key", "k"], ["Cookie", "a=1"], ["Set-Cookie", "b"], ["Set-Cookie", "c"]]);
    expect(forwardableHeaders(headers, true)).toEqual([["Cookie", "a=1"], ["Set-Cookie", "b"], ["Set-Cookie", "c"]]);
  });
});
