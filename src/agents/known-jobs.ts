/**
 * The jobs this agent may report on, in the Durable Object's storage: a builder's assigned build job, and every
 * job id Core sent it in a BUILD or DEPLOY. An agent cannot touch any other job.
 */
export type JobKind = "build" | "deploy";

export interface KnownJob {
  jobId: string;
  kind: JobKind;
  /** The last report surfaced for a deploy job (state and services), so a replay is not surfaced twice. */
  lastReport: string | null;
  finished: boolean;
}

export class KnownJobs {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS jobs (
      job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, last_report TEXT, finished INTEGER NOT NULL DEFAULT 0)`);
  }

  add(jobId: string, kind: JobKind): void {
    this.sql.exec("INSERT OR IGNORE INTO jobs (job_id, kind) VALUES (?, ?)", jobId, kind);
  }

  get(jobId: string): KnownJob | undefined {
    const row = this.sql
      .exec<{ job_id: string; kind: string; last_report: string | null; finished: number }>(
        "SELECT job_id, kind, last_report, finished FROM jobs WHERE job_id = ?",
        jobId,
      )
      .toArray()[0];
    return row && { jobId: row.job_id, kind: row.kind as JobKind, lastReport: row.last_report, finished: row.finished === 1 };
  }

  setLastReport(jobId: string, report: string): void {
    this.sql.exec("UPDATE jobs SET last_report = ? WHERE job_id = ?", report, jobId);
  }

  markFinished(jobId: string): void {
    this.sql.exec("UPDATE jobs SET finished = 1 WHERE job_id = ?", jobId);
  }

  unfinished(): string[] {
    return this.sql.exec<{ job_id: string }>("SELECT job_id FROM jobs WHERE finished = 0 ORDER BY job_id").toArray().map((r) => r.job_id);
  }
}
