import { and, eq, inArray, isNull, or, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { buildJobs } from "../db/schema.ts";
import type { JobState } from "./protocol.ts";

const activeStatuses = ["queued", "provisioning", "running"] as const;
export type BuildJobFinalStatus = "completed" | "failed" | "cancelled";

/** What an agent said about one of its build jobs: a STATUS, or an ERROR naming the job (which fails it). */
export type BuildReport =
  | { kind: "status"; state: JobState; exitCode?: number | null; durationSeconds?: number | null; artifactUrl?: string | null }
  | { kind: "error"; code: string; message: string };

const finalStatusOf: Partial<Record<JobState, BuildJobFinalStatus>> = {
  completed: "completed",
  failed: "failed",
  terminated: "cancelled",
};

/**
 * Applies a report to `build_jobs` with one conditional update: only a job that is still active (and not assigned
 * to another agent) changes, so a replayed report changes nothing. Returns the final status the job moved to when
 * this call is the one that finished it.
 */
export async function applyBuildReport(
  db: Db,
  agentId: string,
  jobId: string,
  report: BuildReport,
): Promise<{ changed: boolean; finished?: BuildJobFinalStatus }> {
  const mine = and(eq(buildJobs.id, jobId), or(isNull(buildJobs.agentId), eq(buildJobs.agentId, agentId)));

  if (report.kind === "status" && report.state === "running") {
    const rows = await db
      .update(buildJobs)
      .set({ status: "running", startedAt: sql`coalesce(${buildJobs.startedAt}, now())` })
      .where(and(mine, inArray(buildJobs.status, ["queued", "provisioning"])))
      .returning({ id: buildJobs.id });
    return { changed: rows.length > 0 };
  }

  const finished = report.kind === "error" ? "failed" : finalStatusOf[report.state];
  if (!finished) return { changed: false };

  const reported = report.kind === "status" && report.durationSeconds != null ? Math.round(report.durationSeconds) : null;
  const duration =
    reported ?? sql<number>`greatest(0, round(extract(epoch from now() - coalesce(${buildJobs.startedAt}, now()))))::int`;
  const exitCode = report.kind === "status" ? (report.exitCode ?? null) : null;
  const rows = await db
    .update(buildJobs)
    .set({
      status: finished,
      completedAt: sql`now()`,
      startedAt:
        reported === null
          ? sql`coalesce(${buildJobs.startedAt}, now())`
          : sql`coalesce(${buildJobs.startedAt}, now() - make_interval(secs => ${reported}))`,
      durationSeconds: duration,
      exitCode,
      artifactUrl: report.kind === "status" && finished === "completed" ? (report.artifactUrl ?? null) : null,
      errorMessage: errorMessageOf(report, finished, exitCode),
    })
    .where(and(mine, inArray(buildJobs.status, [...activeStatuses])))
    .returning({ id: buildJobs.id });
  return rows.length > 0 ? { changed: true, finished } : { changed: false };
}

function errorMessageOf(report: BuildReport, finished: BuildJobFinalStatus, exitCode: number | null): string | null {
  if (report.kind === "error") return `${report.code}: ${report.message}`.slice(0, 4096);
  if (finished === "failed") return exitCode === null ? "the build failed" : `the build failed with exit code ${exitCode}`;
  if (finished === "cancelled") return "the agent terminated the build";
  return null;
}
