import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { buildLogs, projects } from "../db/schema.ts";

/** One stored log line as the API shows it. */
export interface JobLogLine {
  seq: number;
  stream: "stdout" | "stderr";
  timestamp: string;
  line: string;
}

export const DEFAULT_LOG_PAGE = 500;
export const MAX_LOG_PAGE = 1000;

/**
 * A page of a job's stored log lines after `afterSeq`, in seq order: one query. `next_cursor` is the seq to pass as
 * `afterSeq` for the next page, or null when this page reached the end of what is stored now.
 * The caller has already checked that the job exists and that the user may read it.
 */
export async function readJobLogs(
  db: Db,
  jobId: string,
  options: { afterSeq?: number; limit?: number } = {},
): Promise<{ data: JobLogLine[]; next_cursor: string | null }> {
  const afterSeq = Math.max(-1, Math.trunc(options.afterSeq ?? -1));
  const limit = Math.min(MAX_LOG_PAGE, Math.max(1, Math.trunc(options.limit ?? DEFAULT_LOG_PAGE)));
  const rows = await db
    .select({ seq: buildLogs.seq, stream: buildLogs.stream, timestamp: buildLogs.timestamp, line: buildLogs.line })
    .from(buildLogs)
    .where(and(eq(buildLogs.buildJobId, jobId), gt(buildLogs.seq, afterSeq)))
    .orderBy(asc(buildLogs.seq))
    .limit(limit + 1);
  const lines = rows.slice(0, limit).map(toJobLogLine);
  const more = rows.length > limit;
  return { data: lines, next_cursor: more ? String(lines[lines.length - 1]!.seq) : null };
}

export function toJobLogLine(row: { seq: number; stream: "stdout" | "stderr"; timestamp: Date | string; line: string }): JobLogLine {
  return { seq: Number(row.seq), stream: row.stream, timestamp: new Date(row.timestamp).toISOString(), line: row.line };
}

/**
 * One multi-row insert; a (job, seq) already stored is skipped, so resending lines is harmless. The rows travel as one
 * JSON parameter (a few hundred lines would otherwise be thousands of bind parameters to encode and parse).
 *
 * The lines were masked with the project's secrets as of `secrets.version` (`projects.secrets_changed_at`): they are
 * inserted only if that is still the project's version, in the same statement, so a secret created while the job
 * runs never reaches the table unmasked. `inserted: false` means the secrets changed: mask again and retry.
 */
export async function insertLogLines(
  db: Db,
  jobId: string,
  lines: readonly JobLogLine[],
  secrets: { projectId: string | null; version: string | null },
): Promise<{ inserted: boolean }> {
  if (lines.length === 0) return { inserted: true };
  const { rows } = await db.execute<{ current: boolean }>(sql`
    WITH project AS (SELECT secrets_changed_at IS NOT DISTINCT FROM ${secrets.version}::timestamptz AS current FROM ${projects} WHERE id = ${secrets.projectId}),
    stored AS (
      INSERT INTO ${buildLogs} (build_job_id, seq, timestamp, stream, line)
      SELECT ${jobId}, l.seq, l.timestamp, l.stream, l.line
        FROM jsonb_to_recordset(${JSON.stringify(lines)}::jsonb) AS l(seq bigint, timestamp timestamptz, stream text, line text)
       WHERE coalesce((SELECT current FROM project), ${secrets.projectId}::text IS NULL)
      ON CONFLICT (build_job_id, seq) DO NOTHING)
    SELECT coalesce((SELECT current FROM project), ${secrets.projectId}::text IS NULL) AS current`);
  return { inserted: rows[0]?.current === true };
}
