import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { buildJobs } from "../db/schema.ts";
import { ApiError } from "../lib/errors.ts";
import type { TailEvent } from "./agent-connection.ts";
import { agentStub } from "./issue-token.ts";
import { MAX_LOG_PAGE, readJobLogs, type JobLogLine } from "./job-logs.ts";
import { SLOT_LEASE_MS, type StreamSlot } from "./live-stream-slots.ts";

const finalStatuses = new Set(["completed", "failed", "cancelled"]);

export interface StreamOptions {
  /** A comment line this often keeps proxies from closing an idle stream and notices a client that left. */
  keepAliveMs?: number;
  /** How often the job's status is re-read while nothing arrives (the job may end without its agent, e.g. cancelled). */
  statusCheckMs?: number;
  /** While the job has no agent yet, how often to look for one. */
  waitForAgentMs?: number;
  /** The user's live stream slot (see acquireStreamSlot): renewed while the stream runs, released when it ends. */
  slot?: StreamSlot;
}

/**
 * The live tail of a job's logs as Server-Sent Events, for an already authorized job id: `log` events (id = seq,
 * data = {seq, stream, timestamp, line}) from the database after `afterSeq`, then live from the agent's Durable
 * Object, then one `end` event ({status}) when the job reaches a final state, and the stream closes.
 *
 * No gap and no duplicate at the seam: the live subscription is opened before the database is read, so a line is
 * either already stored (read from the database), buffered in the Durable Object (sent on subscribing) or arrives
 * afterwards; any line seen twice is dropped by seq. If the subscription breaks (eviction, redeploy), it is opened
 * again and the database read again from the last seq sent. A client that reconnects passes the last event id it
 * saw as `afterSeq`.
 */
export async function streamJobLogs(env: Env, db: Db, jobId: string, afterSeq = -1, options: StreamOptions = {}): Promise<Response> {
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const statusCheckMs = options.statusCheckMs ?? 30_000;
  const waitForAgentMs = options.waitForAgentMs ?? 2_000;
  const readJob = async () => (await db.select({ status: buildJobs.status, agentId: buildJobs.agentId }).from(buildJobs).where(eq(buildJobs.id, jobId)))[0];

  const first = await readJob();
  if (!first) {
    await options.slot?.release();
    throw new ApiError("NOT_FOUND", "job not found");
  }

  const encoder = new TextEncoder();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  // The slot is renewed by the stream's own writes: a stream that can no longer write lets its lease run out.
  let renewedAt = Date.now();
  const write = async (text: string) => {
    await writer.write(encoder.encode(text));
    if (options.slot && Date.now() - renewedAt >= SLOT_LEASE_MS / 3) {
      renewedAt = Date.now();
      void options.slot.renew();
    }
  };
  const seen = new SeenSeqs(Math.max(-1, Math.trunc(afterSeq)));
  const sendLines = async (lines: readonly JobLogLine[]) => {
    let out = "";
    for (const line of lines) if (seen.add(line.seq)) out += `id: ${line.seq}\nevent: log\ndata: ${JSON.stringify(line)}\n\n`;
    if (out) await write(out);
  };
  const sendHistory = async () => {
    let cursor = seen.floor;
    for (;;) {
      const page = await readJobLogs(db, jobId, { afterSeq: cursor, limit: MAX_LOG_PAGE });
      await sendLines(page.data);
      if (!page.next_cursor) return;
      cursor = Number(page.next_cursor);
    }
  };

  let clientGone = false;
  writer.closed.catch(() => (clientGone = true));

  const pump = async () => {
    let job: typeof first | undefined = first;
    while (job && !finalStatuses.has(job.status) && !clientGone) {
      if (!job.agentId) {
        await sendHistory();
        await write(": waiting for the job's agent\n\n");
        await sleep(waitForAgentMs);
        job = await readJob();
        continue;
      }
      const live = await agentStub(env, job.agentId).tailLogs(jobId, seen.floor);
      await sendHistory();
      const outcome = await followLive(live, { keepAliveMs, statusCheckMs, write, sendLines, isFinal: async () => finalStatuses.has((await readJob())?.status ?? "cancelled") });
      if (outcome === "broken") await sleep(1_000);
      job = await readJob();
      // The object ended the tail although the job is not final (revoked agent): nothing more will come from it.
      if (outcome === "ended" && job && !finalStatuses.has(job.status)) break;
    }
    await sendHistory();
    await write(`event: end\ndata: ${JSON.stringify({ status: job?.status ?? null })}\n\n`);
  };

  write("retry: 2000\n\n")
    .then(pump)
    .catch(() =>
      write(`event: error\ndata: ${JSON.stringify({ message: "the log stream was interrupted; reconnect with Last-Event-ID" })}\n\n`),
    )
    .catch(() => undefined)
    // Released before the response ends: nothing of this request runs after that.
    .finally(async () => {
      await options.slot?.release();
      await writer.close().catch(() => undefined);
    });

  return new Response(readable, {
    headers: { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no" },
  });
}

/**
 * Copies the Durable Object's NDJSON tail into the SSE stream until its `end` ("ended"), until a status check finds
 * the job final ("final"), or until the subscription or the client goes away ("broken").
 */
async function followLive(
  live: ReadableStream<Uint8Array>,
  io: {
    keepAliveMs: number;
    statusCheckMs: number;
    write: (text: string) => Promise<void>;
    sendLines: (lines: readonly JobLogLine[]) => Promise<void>;
    isFinal: () => Promise<boolean>;
  },
): Promise<"ended" | "final" | "broken"> {
  const reader = live.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let lastCheck = Date.now();
  const read = () => {
    const next = reader.read();
    next.catch(() => undefined); // a read still pending when the subscription is cancelled rejects; nobody waits for it
    return next;
  };
  let pending = read();
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = new Promise<"tick">((resolve) => (timer = setTimeout(() => resolve("tick"), io.keepAliveMs)));
      const result = await Promise.race([pending, tick]).finally(() => clearTimeout(timer));
      if (result === "tick") {
        await io.write(": keepalive\n\n");
        if (Date.now() - lastCheck >= io.statusCheckMs) {
          lastCheck = Date.now();
          if (await io.isFinal()) return "final";
        }
        continue;
      }
      if (result.done) return "broken";
      pending = read();
      buffered += decoder.decode(result.value, { stream: true });
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      const lines: JobLogLine[] = [];
      for (const part of parts) {
        if (!part) continue;
        const event = JSON.parse(part) as TailEvent;
        if (event.type === "ping") continue;
        if (event.type === "end") {
          await io.sendLines(lines);
          return "ended";
        }
        const { type: _type, ...line } = event;
        lines.push(line);
      }
      await io.sendLines(lines);
    }
  } catch {
    return "broken";
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/** Seqs already sent: everything up to `floor`, plus a set above it (lines can arrive out of order after a resend). */
class SeenSeqs {
  floor: number;
  private readonly above = new Set<number>();

  constructor(floor: number) {
    this.floor = floor;
  }

  add(seq: number): boolean {
    if (seq <= this.floor || this.above.has(seq)) return false;
    this.above.add(seq);
    while (this.above.delete(this.floor + 1)) this.floor++;
    return true;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
