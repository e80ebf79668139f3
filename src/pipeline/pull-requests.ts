import { sql, type Column, type SQL } from "drizzle-orm";
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
    .values({ projectId: event.projectId, prNumber: event.prNumber, state, headSha: event.headSha, headRef: event.headRef, title: event.title, titleAt: event.title === null ? null : at, isFork: event.isFork, lastEventAt: at })
    .onConflictDoUpdate({
      target: [pullRequests.projectId, pullRequests.prNumber],
      // is_fork is sticky: a pull request's head repository never changes, so true is never taken back.
      set: { state, headSha: event.headSha, headRef: event.headRef, ...newerTitle(event.title, at), isFork: sql`${pullRequests.isFork} OR ${event.isFork}`, lastEventAt: at },
      setWhere: sql`${pullRequests.lastEventAt} < ${at.toISOString()}`,
    });
}

/** The title columns' new values: `title` only when it comes from a later event than the one the stored title is from. */
function newerTitle(title: string | null, at: Date) {
  const newer = sql`${title}::text IS NOT NULL AND (${pullRequests.titleAt} IS NULL OR ${pullRequests.titleAt} < ${at.toISOString()})`;
  return {
    title: sql`CASE WHEN ${newer} THEN ${title}::text ELSE ${pullRequests.title} END`,
    titleAt: sql`CASE WHEN ${newer} THEN ${at.toISOString()}::timestamptz ELSE ${pullRequests.titleAt} END`,
  };
}

/**
 * An `edited` pull request (its title may have changed): only the title is recorded, and only over an older one. The
 * event leaves the pull request's latest event alone, so a push it overtook is still built; a pull request Stagely
 * never recorded stays unrecorded.
 */
export function recordPullRequestTitle(db: Db, edit: { projectId: string; prNumber: number; title: string | null; updatedAt: string }) {
  return db
    .update(pullRequests)
    .set(newerTitle(edit.title, new Date(edit.updatedAt)))
    .where(sql`${pullRequests.projectId} = ${edit.projectId} AND ${pullRequests.prNumber} = ${edit.prNumber}`);
}

/** True inside the batch when this event is the pull request's latest applied one. */
export function eventIsCurrent(event: PullRequestEvent): SQL {
  return sql`EXISTS (SELECT 1 FROM ${pullRequests} WHERE project_id = ${event.projectId} AND pr_number = ${event.prNumber}
    AND last_event_at = ${new Date(event.updatedAt).toISOString()} AND head_sha = ${event.headSha}
    AND state = ${event.action === "closed" ? "closed" : "open"})`;
}

/**
 * True when a newer event of the pull request was applied already: read with the step's other data, before its slow
 * work (fetching stagely.yaml) for an event that is already stale. `projectId` may be a column of the reading query.
 */
export function newerEventApplied(event: { projectId: string | SQL | Column; prNumber: number; updatedAt: string }): SQL<boolean> {
  return sql<boolean>`EXISTS (SELECT 1 FROM ${pullRequests} WHERE ${pullRequests.projectId} = ${event.projectId} AND ${pullRequests.prNumber} = ${event.prNumber}
      AND ${pullRequests.lastEventAt} > ${new Date(event.updatedAt).toISOString()})`;
}
