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

/** Read on every LOG frame, so the few rows are also kept in memory (every write goes to both). */
export class KnownJobs {
  private readonly sql: SqlStorage;
  private cache: Map<string, KnownJob> | null = null;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS jobs (
      job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, last_report TEXT, finished INTEGER NOT NULL DEFAULT 0)`);
  }

  add(jobId: string, kind: JobKind): void {
    this.sql.exec("INSERT OR IGNORE INTO jobs (job_id, kind) VALUES (?, ?)", jobId, kind);
    if (!this.all().has(jobId)) this.all().set(jobId, { jobId, kind, lastReport: null, finished: false });
  }

  get(jobId: string): KnownJob | undefined {
    const job = this.all().get(jobId);
    return job && { ...job };
  }

  setLastReport(jobId: string, report: string): void {
    this.sql.exec("UPDATE jobs SET last_report = ? WHERE job_id = ?", report, jobId);
    const job = this.all().get(jobId);
    if (job) job.lastReport = report;
  }

  markFinished(jobId: string): void {
    this.sql.exec("UPDATE jobs SET finished = 1 WHERE job_id = ?", jobId);
    const job = this.all().get(jobId);
    if (job) job.finished = true;
  }

  unfinished(): string[] {
    return [...this.all().values()].filter((job) => !job.finished).map((job) => job.jobId).sort();
  }

  private all(): Map<string, KnownJob> {
    if (!this.cache) {
      const rows = this.sql.exec<{ job_id: string; kind: string; last_report: string | null; finished: number }>("SELECT job_id, kind, last_report, finished FROM jobs");
      this.cache = new Map([...rows].map((row) => [row.job_id, { jobId: row.job_id, kind: row.kind as JobKind, lastReport: row.last_report, finished: row.finished === 1 }]));
    }
    return this.cache;
  }
}
