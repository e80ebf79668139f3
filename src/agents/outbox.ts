import type { BuildReport } from "./job-reports.ts";
import type { AgentJobEvent } from "./job-events.ts";

/**
 * Work the Durable Object owes Postgres and the queue, kept in its storage until done so a failure or an eviction
 * only delays it: build reports to apply (in arrival order) and events to send to the JOBS queue.
 */
export class Outbox {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec("CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, body TEXT NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)");
  }

  addReport(jobId: string, report: BuildReport): void {
    this.sql.exec("INSERT INTO reports (job_id, body) VALUES (?, ?)", jobId, JSON.stringify(report));
  }

  reports(): { id: number; jobId: string; report: BuildReport }[] {
    return this.sql
      .exec<{ id: number; job_id: string; body: string }>("SELECT id, job_id, body FROM reports ORDER BY id")
      .toArray()
      .map((row) => ({ id: row.id, jobId: row.job_id, report: JSON.parse(row.body) as BuildReport }));
  }

  deleteReport(id: number): void {
    this.sql.exec("DELETE FROM reports WHERE id = ?", id);
  }

  addEvent(event: AgentJobEvent): void {
    this.sql.exec("INSERT INTO events (body) VALUES (?)", JSON.stringify(event));
  }

  events(): { id: number; event: AgentJobEvent }[] {
    return this.sql
      .exec<{ id: number; body: string }>("SELECT id, body FROM events ORDER BY id")
      .toArray()
      .map((row) => ({ id: row.id, event: JSON.parse(row.body) as AgentJobEvent }));
  }

  deleteEvent(id: number): void {
    this.sql.exec("DELETE FROM events WHERE id = ?", id);
  }

  isEmpty(): boolean {
    const row = this.sql.exec<{ n: number }>("SELECT (SELECT count(*) FROM reports) + (SELECT count(*) FROM events) AS n").one();
    return row.n === 0;
  }
}
