import { sql, type SQL } from "drizzle-orm";
import * as z from "zod";
import { previewExposure, type PreviewExposure } from "../agents/protocol.ts";
import type { Db } from "../db/client.ts";
import { environmentStatuses, previewAccessModes } from "../db/schema.ts";
import type { Logger } from "../lib/logger.ts";
import { previewHostStub } from "./stubs.ts";

/**
 * What a preview host needs to answer a request without the database: the environment's state, who may see it,
 * which agent serves it and what it exposes, the run in progress (for the "building" page) and the live share
 * tokens. Kept in the host's Durable Object (PreviewHost), pushed by `publishPreviewHosts` after every change.
 */
export const hostSnapshot = z.object({
  /** The newest `updated_at` (ms) among the rows it was read from: an older snapshot never replaces a newer one. */
  version: z.number(),
  environment_id: z.string(),
  project_id: z.string(),
  team_id: z.string(),
  subdomain_hash: z.string(),
  status: z.enum(environmentStatuses),
  access: z.enum(previewAccessModes),
  agent_id: z.string().nullable(),
  /** From the config of the last run that deployed (stagely.yaml `preview.expose`/`routes`); null when it says nothing. */
  exposure: previewExposure.nullable(),
  run: z
    .object({
      id: z.string(),
      status: z.string(),
      error: z.string().nullable(),
      jobs: z.array(z.object({ id: z.string(), name: z.string(), status: z.string() })),
    })
    .nullable(),
  share_tokens: z.array(z.object({ id: z.string(), hash: z.string(), expires_at: z.string() })),
});
export type HostSnapshot = z.infer<typeof hostSnapshot>;

/** `preview.expose`/`preview.routes` of a stored run config, or null when absent or not understood (old runs). */
export function exposureOf(previewConfig: unknown): PreviewExposure | null {
  if (!previewConfig || typeof previewConfig !== "object") return null;
  const { expose, routes } = previewConfig as { expose?: unknown; routes?: unknown };
  if (expose === undefined && routes === undefined) return null;
  const parsed = previewExposure.safeParse({ expose: expose ?? null, routes: routes ?? [] });
  return parsed.success ? parsed.data : null;
}

export interface SnapshotRow extends Record<string, unknown> {
  snapshot: Record<string, unknown> & { preview: unknown };
}

/** The snapshot of every environment matching `where` (over `e` environments and `p` projects), as one SELECT. */
export function snapshotSelect(where: SQL): SQL {
  return sql`
    SELECT json_build_object(
      'version', floor(extract(epoch FROM greatest(
          e.updated_at, p.updated_at,
          (SELECT max(r.updated_at) FROM workflow_runs r WHERE r.environment_id = e.id),
          (SELECT max(j.updated_at) FROM build_jobs j JOIN workflow_runs r ON r.id = j.workflow_run_id WHERE r.environment_id = e.id),
          (SELECT max(a.updated_at) FROM agent_connections a WHERE a.environment_id = e.id),
          (SELECT max(s.updated_at) FROM preview_share_tokens s WHERE s.environment_id = e.id))) * 1000),
      'environment_id', e.id, 'project_id', e.project_id, 'team_id', p.team_id, 'subdomain_hash', e.subdomain_hash,
      'status', e.status, 'access', p.preview_access,
      'agent_id', (SELECT a.agent_id FROM agent_connections a
                    WHERE a.environment_id = e.id AND a.role = 'preview' ORDER BY a.created_at DESC, a.agent_id LIMIT 1),
      'preview', (SELECT r.config -> 'preview' FROM workflow_runs r
                   WHERE r.environment_id = e.id AND r.status = 'completed' ORDER BY r.completed_at DESC NULLS LAST LIMIT 1),
      'run', (SELECT json_build_object('id', r.id, 'status', r.status, 'error', r.error_message,
                'jobs', coalesce((SELECT json_agg(json_build_object('id', j.id, 'name', j.name, 'status', j.status) ORDER BY j.name)
                                    FROM build_jobs j WHERE j.workflow_run_id = r.id), '[]'::json))
                FROM workflow_runs r WHERE r.environment_id = e.id ORDER BY r.created_at DESC, r.id LIMIT 1),
      'share_tokens', coalesce((SELECT json_agg(json_build_object('id', s.id, 'hash', s.token_hash, 'expires_at', s.expires_at))
                                  FROM preview_share_tokens s
                                 WHERE s.environment_id = e.id AND s.revoked_at IS NULL AND s.expires_at > now()), '[]'::json)
    ) AS snapshot
      FROM environments e JOIN projects p ON p.id = e.project_id
     WHERE ${where}`;
}

/** Parses a row of `snapshotSelect`. */
export function toSnapshot(row: SnapshotRow): HostSnapshot {
  const { preview, ...rest } = row.snapshot;
  return hostSnapshot.parse({ ...rest, exposure: exposureOf(preview) });
}

/** Sends snapshots to their hosts' Durable Objects. */
export async function pushSnapshots(env: Env, snapshots: HostSnapshot[]): Promise<void> {
  await Promise.all(snapshots.map((snapshot) => previewHostStub(env, snapshot.subdomain_hash).publish(snapshot)));
}

/** `e.id IN (...)` for the given environment ids (nulls dropped), or null when there are none. */
export function environmentsWhere(environmentIds: (string | null | undefined)[]): SQL | null {
  const ids = [...new Set(environmentIds.filter((id): id is string => typeof id === "string"))];
  return ids.length === 0 ? null : sql`e.id IN (${sql.join(ids.map((id) => sql`${id}`), sql`, `)})`;
}

/**
 * The snapshot SELECT as a statement for a `db.batch`: a state change and the snapshots visitors see of it share one
 * round trip (and one transaction). `publishSnapshots` pushes what it read.
 */
export function snapshotStatement(db: Db, where: SQL) {
  return db.execute<SnapshotRow>(snapshotSelect(where));
}

/** Pushes snapshots read by `snapshotStatement` to their hosts. Never throws (see publishPreviewHostsWhere). */
export async function publishSnapshots(env: Env, rows: SnapshotRow[], logger: Logger): Promise<void> {
  try {
    await pushSnapshots(env, rows.map(toSnapshot));
  } catch (error) {
    logPublishFailure(logger, error);
  }
}

/**
 * Makes the preview hosts of these environments see their current state: one database round trip, then one call
 * per host. Called after every change a visitor could notice (status, run progress, access mode, share tokens) that
 * did not read the snapshots in its own batch (`snapshotStatement`).
 */
export function publishPreviewHosts(env: Env, db: Db, environmentIds: (string | null | undefined)[], logger: Logger): Promise<void> {
  const where = environmentsWhere(environmentIds);
  return where ? publishPreviewHostsWhere(env, db, where, logger) : Promise.resolve();
}

/** `publishPreviewHosts` for the environments matching `where` (over `e` environments and `p` projects). */
export async function publishPreviewHostsWhere(env: Env, db: Db, where: SQL, logger: Logger): Promise<void> {
  try {
    const { rows } = await snapshotStatement(db, where);
    await pushSnapshots(env, rows.map(toSnapshot));
  } catch (error) {
    logPublishFailure(logger, error);
  }
}

// Not fatal to the step: a host that missed an update catches up within a minute while it is visited (PreviewHost
// re-reads its state with each `last_request_at` write).
function logPublishFailure(logger: Logger, error: unknown): void {
  logger.warn("could not publish preview host state", { error: error instanceof Error ? { name: error.name, message: error.message } : {} });
}
