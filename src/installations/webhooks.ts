import { sql } from "drizzle-orm";
import * as z from "zod";
import { auditGitHubChangeWhere } from "../audit/record.ts";
import type { Db } from "../db/client.ts";
import { githubInstallations } from "../db/schema.ts";
import { installationObject, repositoryObject, type InstallationInfo } from "../pipeline/github-app.ts";
import { addRepositories, bindProjects, removeRepositories, replaceRepositories, unbindProjects, upsertInstallation } from "./records.ts";

/**
 * The `installation` and `installation_repositories` webhooks keep installations current: created (stored unclaimed
 * until a team's install flow claims it), deleted, suspended, unsuspended, new permissions accepted, repositories
 * added or removed. Small and bounded (one batch), so they are applied while GitHub waits for the answer.
 */

const sender = z.object({ login: z.string() }).optional();

const installationPayload = z.object({
  action: z.string(),
  installation: installationObject,
  repositories: z.array(repositoryObject).optional(),
  sender,
});

const installationRepositoriesPayload = z.object({
  action: z.string(),
  installation: installationObject,
  repositories_added: z.array(repositoryObject).default([]),
  repositories_removed: z.array(repositoryObject).default([]),
  sender,
});

export const installationEvents = ["installation", "installation_repositories"] as const;
export type InstallationEvent = (typeof installationEvents)[number];

const auditActions: Record<string, string> = {
  "installation.created": "github_installation.created",
  "installation.deleted": "github_installation.deleted",
  "installation.suspend": "github_installation.suspended",
  "installation.unsuspend": "github_installation.unsuspended",
  "installation.new_permissions_accepted": "github_installation.permissions_accepted",
  "installation_repositories.added": "github_installation.repositories_added",
  "installation_repositories.removed": "github_installation.repositories_removed",
};

export type ParsedInstallationEvent =
  | { ok: true; action: string; apply: (db: Db) => Parameters<Db["batch"]>[0] }
  | { ok: false; unused: true; action: string }
  | { ok: false; unused: false; problems: string };

function problemsOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
}

/** Checks a payload and answers the batch that applies it, or why it is not used. */
export function parseInstallationEvent(event: InstallationEvent, body: unknown): ParsedInstallationEvent {
  const action = typeof (body as { action?: unknown })?.action === "string" ? (body as { action: string }).action : "";
  const auditAction = auditActions[`${event}.${action}`];
  if (!auditAction) return { ok: false, unused: true, action: action || "(none)" };

  if (event === "installation") {
    const parsed = installationPayload.safeParse(body);
    if (!parsed.success) return { ok: false, unused: false, problems: problemsOf(parsed.error) };
    const { installation, repositories } = parsed.data;
    const info: InstallationInfo =
      action === "suspend" ? { ...installation, suspendedAt: installation.suspendedAt ?? new Date().toISOString() }
      : action === "unsuspend" ? { ...installation, suspendedAt: null }
      : installation;
    const audit = (db: Db) => auditOf(db, info.id, auditAction, { sender: parsed.data.sender?.login ?? null });
    if (action === "deleted") {
      return { ok: true, action, apply: (db) => [audit(db), unbindProjects(db, info.id), db.execute(sql`DELETE FROM ${githubInstallations} WHERE id = ${info.id}`)] };
    }
    return {
      ok: true,
      action,
      apply: (db) => [
        upsertInstallation(db, info),
        ...(action === "created" && repositories ? [...replaceRepositories(db, info.id, repositories), bindProjects(db, info.id)] : []),
        audit(db),
      ],
    };
  }

  const parsed = installationRepositoriesPayload.safeParse(body);
  if (!parsed.success) return { ok: false, unused: false, problems: problemsOf(parsed.error) };
  const { installation, repositories_added: added, repositories_removed: removed } = parsed.data;
  return {
    ok: true,
    action,
    apply: (db) => [
      upsertInstallation(db, installation),
      ...addRepositories(db, installation.id, added),
      ...removeRepositories(db, installation.id, removed.map((r) => r.id)),
      bindProjects(db, installation.id),
      auditOf(db, installation.id, auditAction, {
        sender: parsed.data.sender?.login ?? null,
        added: added.map((r) => r.fullName),
        removed: removed.map((r) => r.fullName),
      }),
    ],
  };
}

/** An audit row in the owning team's log; none for an installation no team has claimed. */
function auditOf(db: Db, installationId: number, action: string, metadata: Record<string, unknown>) {
  return auditGitHubChangeWhere(
    db,
    { action, resourceType: "github_installation", resourceId: String(installationId), metadata },
    { from: sql`FROM ${githubInstallations} WHERE id = ${installationId} AND team_id IS NOT NULL`, teamId: sql`${githubInstallations.teamId}`, projectId: sql`NULL` },
  );
}
