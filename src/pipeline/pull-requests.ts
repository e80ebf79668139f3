import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { pullRequests } from "../db/schema.ts";

export type PullRequestAction = "opened" | "reopened" | "synchronize" | "closed";

export interface PullRequestEvent {
  projectId: string;
  action: PullRequestAction;
  prNumber: number;
  headSha: string;
  headRef: string;
  title: string | null;
  isFork: boolean;
  /** GitHub's `pull_request.updated_at`: orders the events of one pull request. */
  updatedAt: string;
}

/**
 * Records the event as the pull request's latest state unless a newer one was applied already. Goes first in the
 * batch that acts on the event; every other statement of that batch is gated by `eventIsCurrent`, so a late or
 * reordered delivery changes nothing, and a redelivery of the same event finds its own work already done.
 */
export function recordPullRequestEvent(db: Db, event: PullRequestEvent) {
  const state = event.action === "closed" ? "closed" : "open";
  const at = new Date(event.updatedAt);
  return db
    .insert(pullRequests)
    .values({ projectId: event.projectId, prNumber: event.prNumber, state, headSha: event.headSha, headRef: event.headRef, title: event.title, isFork: event.isFork, lastEventAt: at })
    .onConflictDoUpdate({
      target: [pullRequests.projectId, pullRequests.prNumber],
      // is_fork is sticky: a pull request's head repository never changes, so true is never taken back.
      set: { state, headSha: event.headSha, headRef: event.headRef, title: sql`coalesce(${event.title}, ${pullRequests.title})`, isFork: sql`${pullRequests.isFork} OR ${event.isFork}`, lastEventAt: at },
      setWhere: sql`${pullRequests.lastEventAt} < ${at.toISOString()}`,
    });
}

/** True inside the batch when this event is the pull request's latest applied one. */
export function eventIsCurrent(event: PullRequestEvent): SQL {
  return sql`EXISTS (SELECT 1 FROM ${pullRequests} WHERE project_id = ${event.projectId} AND pr_number = ${event.prNumber}
    AND last_event_at = ${new Date(event.updatedAt).toISOString()} AND head_sha = ${event.headSha}
    AND state = ${event.action === "closed" ? "closed" : "open"})`;
}

/** Read before doing slow work (fetching stagely.yaml) for an event that is already stale. */
export async function isStale(db: Db, event: PullRequestEvent): Promise<boolean> {
  const result = await db.execute<{ stale: boolean }>(sql`
    SELECT EXISTS (SELECT 1 FROM ${pullRequests} WHERE project_id = ${event.projectId} AND pr_number = ${event.prNumber}
      AND last_event_at > ${new Date(event.updatedAt).toISOString()}) AS stale`);
  return result.rows[0]?.stale === true;
}
