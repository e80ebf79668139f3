import type { JobLogLine } from "./job-logs.ts";

/**
 * Log lines received from the agent and not yet in Postgres, kept in the Durable Object's SQLite storage so they
 * survive eviction, plus each job's acknowledgement cursor: the highest seq such that every line 1..seq is stored.
 * Lines stored above a gap are remembered until the gap fills, so a resent line is recognised and the cursor moves
 * only over contiguous seqs.
 */
export class LogBuffer {
  private readonly sql: SqlStorage;
  private readonly storage: DurableObjectStorage;

  constructor(storage: DurableObjectStorage) {
    this.storage = storage;
    const sql = (this.sql = storage.sql);
    sql.exec(`CREATE TABLE IF NOT EXISTS pending_logs (
      job_id TEXT NOT NULL, seq INTEGER NOT NULL, stream TEXT NOT NULL, ts TEXT NOT NULL, line TEXT NOT NULL,
      PRIMARY KEY (job_id, seq))`);
    sql.exec(`CREATE TABLE IF NOT EXISTS stored_ahead (job_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (job_id, seq))`);
    sql.exec(`CREATE TABLE IF NOT EXISTS log_cursors (job_id TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL)`);
  }

  ackedSeq(jobId: string): number {
    const row = this.sql.exec<{ acked_seq: number }>("SELECT acked_seq FROM log_cursors WHERE job_id = ?", jobId).toArray()[0];
    return row?.acked_seq ?? 0;
  }

  /** Buffers lines not seen before and returns them (in seq order); stored or already buffered lines are skipped. */
  add(jobId: string, lines: readonly JobLogLine[]): JobLogLine[] {
    // One statement per batch: the lines travel as JSON and SQLite keeps those above the cursor that are neither
    // buffered (OR IGNORE on the primary key) nor stored above a gap.
    const inserted = this.sql
      .exec<{ seq: number }>(
        `INSERT OR IGNORE INTO pending_logs (job_id, seq, stream, ts, line)
         SELECT ?1, l.value ->> 'seq', l.value ->> 'stream', l.value ->> 'timestamp', l.value ->> 'line'
         FROM json_each(?2) AS l
         WHERE l.value ->> 'seq' > coalesce((SELECT acked_seq FROM log_cursors WHERE job_id = ?1), 0)
           AND NOT EXISTS (SELECT 1 FROM stored_ahead s WHERE s.job_id = ?1 AND s.seq = l.value ->> 'seq')
         RETURNING seq`,
        jobId,
        JSON.stringify(lines),
      )
      .toArray();
    if (inserted.length === lines.length) return [...lines].sort((a, b) => a.seq - b.seq);
    const fresh = new Set(inserted.map((r) => r.seq));
    return lines.filter((line) => fresh.has(line.seq)).sort((a, b) => a.seq - b.seq);
  }

  pendingCount(jobId: string): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM pending_logs WHERE job_id = ?", jobId).one().n;
  }

  totalPending(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM pending_logs").one().n;
  }

  jobsWithPending(): string[] {
    return this.sql.exec<{ job_id: string }>("SELECT DISTINCT job_id FROM pending_logs ORDER BY job_id").toArray().map((r) => r.job_id);
  }

  /** The next lines to insert for a job, in seq order: at most `maxLines`, and at most `maxChars` of text (at least one line). */
  take(jobId: string, maxLines: number, maxChars: number): JobLogLine[] {
    const out: JobLogLine[] = [];
    let chars = 0;
    const rows = this.sql.exec<{ seq: number; stream: string; ts: string; line: string }>(
      "SELECT seq, stream, ts, line FROM pending_logs WHERE job_id = ? ORDER BY seq LIMIT ?",
      jobId,
      maxLines,
    );
    for (const row of rows) {
      if (out.length > 0 && chars + row.line.length > maxChars) break;
      chars += row.line.length;
      out.push({ seq: row.seq, stream: row.stream as JobLogLine["stream"], timestamp: row.ts, line: row.line });
    }
    return out;
  }

  /** Buffered lines of a job above `afterSeq`, in seq order (what a live tail has not seen from the database). */
  pendingAfter(jobId: string, afterSeq: number): JobLogLine[] {
    return this.sql
      .exec<{ seq: number; stream: string; ts: string; line: string }>(
        "SELECT seq, stream, ts, line FROM pending_logs WHERE job_id = ? AND seq > ? ORDER BY seq",
        jobId,
        afterSeq,
      )
      .toArray()
      .map((row) => ({ seq: row.seq, stream: row.stream as JobLogLine["stream"], timestamp: row.ts, line: row.line }));
  }

  /** Records that these lines are in Postgres and returns the job's new acknowledgement cursor. */
  markStored(jobId: string, seqs: readonly number[]): number {
    let acked = this.ackedSeq(jobId);
    const sorted = [...seqs].sort((a, b) => a - b);
    this.sqlTransaction(() => {
      this.sql.exec("DELETE FROM pending_logs WHERE job_id = ? AND seq IN (SELECT value FROM json_each(?))", jobId, JSON.stringify(sorted));
      // The usual case: the batch continues the cursor without a gap.
      let i = 0;
      while (i < sorted.length && sorted[i]! <= acked + 1) acked = Math.max(acked, sorted[i++]!);
      const ahead = sorted.slice(i);
      if (ahead.length > 0) {
        this.sql.exec("INSERT OR IGNORE INTO stored_ahead (job_id, seq) SELECT ?, value FROM json_each(?)", jobId, JSON.stringify(ahead));
      }
      const waiting = this.sql.exec<{ seq: number }>("SELECT seq FROM stored_ahead WHERE job_id = ? ORDER BY seq", jobId).toArray();
      for (const { seq } of waiting) {
        if (seq > acked + 1) break;
        acked = Math.max(acked, seq);
      }
      if (waiting.length > 0) this.sql.exec("DELETE FROM stored_ahead WHERE job_id = ? AND seq <= ?", jobId, acked);
      this.sql.exec(
        "INSERT INTO log_cursors (job_id, acked_seq) VALUES (?, ?) ON CONFLICT (job_id) DO UPDATE SET acked_seq = excluded.acked_seq",
        jobId,
        acked,
      );
    });
    return acked;
  }

  /** The job no longer exists in Postgres: its buffered lines can never be stored. Returns the highest seq dropped. */
  dropJob(jobId: string): number {
    const row = this.sql.exec<{ m: number | null }>("SELECT max(seq) AS m FROM pending_logs WHERE job_id = ?", jobId).one();
    const highest = Math.max(row.m ?? 0, this.ackedSeq(jobId));
    this.sqlTransaction(() => {
      this.sql.exec("DELETE FROM pending_logs WHERE job_id = ?", jobId);
      this.sql.exec("DELETE FROM stored_ahead WHERE job_id = ?", jobId);
      this.sql.exec(
        "INSERT INTO log_cursors (job_id, acked_seq) VALUES (?, ?) ON CONFLICT (job_id) DO UPDATE SET acked_seq = excluded.acked_seq",
        jobId,
        highest,
      );
    });
    return highest;
  }

  private sqlTransaction(work: () => void): void {
    this.storage.transactionSync(work);
  }
}
