import * as z from "zod";
import { configOf, dbOf } from "../../app-env.ts";
import { readJobLogs } from "../../agents/job-logs.ts";
import { acquireStreamSlot } from "../../agents/live-stream-slots.ts";
import { streamJobLogs } from "../../agents/log-stream.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { jobParams, jobSchema, toApiJob } from "../model.ts";
import { jobInTeam } from "../scoped.ts";

export const getJob = defineRoute({
  method: "get",
  path: "/v1/jobs/:id",
  summary: "A build job",
  tag: "runs",
  access: { kind: "team", minRole: "viewer", resource: "job" },
  params: jobParams,
  response: jobSchema,
  async handler(c, { params }) {
    const { job } = await jobInTeam(dbOf(c), c.get("auth"), params.id, "viewer");
    return c.json(toApiJob(job));
  },
});

const logLine = z.object({ seq: z.number().int(), stream: z.enum(["stdout", "stderr"]), timestamp: z.string(), line: z.string() });

export const getJobLogs = defineRoute({
  method: "get",
  path: "/v1/jobs/:id/logs",
  summary: "A job's log lines in order, a page at a time (cursor = the last seq you have); secrets are masked",
  tag: "runs",
  access: { kind: "team", minRole: "viewer", resource: "job" },
  params: jobParams,
  query: z.object({
    cursor: z.coerce.number().int().min(-1).default(-1).describe("return lines after this seq (Core's own note, when there is one, is seq 0)"),
    limit: z.coerce.number().int().min(1).max(1000).default(500),
  }),
  // The shape of every list (README "Pagination"), with a seq for a cursor.
  response: z.object({ data: z.array(logLine), next_cursor: z.string().nullable() }),
  async handler(c, { params, query }) {
    const db = dbOf(c);
    await jobInTeam(db, c.get("auth"), params.id, "viewer");
    return c.json(await readJobLogs(db, params.id, { afterSeq: query.cursor, limit: query.limit }));
  },
});

/** The seq an EventSource reconnecting with `Last-Event-ID` saw last (the ids of this stream's events are seqs). */
function resumeAfter(lastEventId: string | undefined): number {
  if (!lastEventId) return -1;
  if (!/^\d{1,15}$/.test(lastEventId)) {
    const issue = { path: "Last-Event-ID", message: "must be the id of an event of this stream (a whole number, at most 15 digits)" };
    throw new ApiError("VALIDATION_FAILED", `invalid header: ${issue.path}: ${issue.message}`, { issues: [issue] });
  }
  return Number(lastEventId);
}

export const streamJobLogsRoute = defineRoute({
  method: "get",
  path: "/v1/jobs/:id/logs/stream",
  summary:
    "Follow a job's logs live (Server-Sent Events: history, then live lines, then `end`); resume with Last-Event-ID. At most MAX_LIVE_LOG_STREAMS_PER_USER open at once per user (429 beyond)",
  tag: "runs",
  access: { kind: "team", minRole: "viewer", resource: "job" },
  params: jobParams,
  query: z.object({ after: z.coerce.number().int().min(0).optional().describe("resume after this seq") }),
  async handler(c, { params, query }) {
    const db = dbOf(c);
    const auth = c.get("auth");
    await jobInTeam(db, auth, params.id, "viewer");
    const after = query.after ?? resumeAfter(c.req.header("Last-Event-ID"));
    const max = configOf(c).MAX_LIVE_LOG_STREAMS_PER_USER;
    const slot = await acquireStreamSlot(c.env, auth.user.id, max);
    if (!slot) {
      throw new ApiError("RATE_LIMITED", `you already have ${max} live log streams open, the most one user may; close one, or read the stored lines with GET /v1/jobs/${params.id}/logs`, {
        headers: { "Retry-After": "15" },
      });
    }
    return streamJobLogs(c.env, db, params.id, after, { slot });
  },
});
