import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { associatedData } from "../db/encrypted-columns.ts";
import { buildJobs, environments, projects, secrets, workflowRuns } from "../db/schema.ts";
import type { Keyring } from "../lib/crypto.ts";
import type { Logger } from "../lib/logger.ts";
import { createMasker, type Masker } from "./masker.ts";

/** A masker not confirmed current for this long is reloaded before it masks anything (see AssignmentMasker). */
export const MASKER_RECHECK_MS = 10_000;

/** Whose secrets mask an agent's output: a build job's project, or a preview environment's project. */
export type SecretsOwner = { buildJobId: string } | { environmentId: string };

export interface ProjectMasker {
  /** Null when the job or environment no longer exists (nothing to mask with). */
  projectId: string | null;
  /** The project's `secrets_changed_at` (as text) when the secrets were read: a change means a reload. */
  version: string | null;
  mask: Masker;
}

/**
 * The masker of a build job's or an environment's project: its decrypted secrets and their version, in one query.
 * A secret that cannot be decrypted is skipped with a warning naming its id (never its value); a database failure
 * throws so the caller masks and stores nothing.
 */
export async function loadProjectMasker(db: Db, keyring: Keyring, owner: SecretsOwner, logger: Logger): Promise<ProjectMasker> {
  const project =
    "buildJobId" in owner
      ? sql`(SELECT e.project_id FROM ${buildJobs} j JOIN ${workflowRuns} r ON r.id = j.workflow_run_id
               JOIN ${environments} e ON e.id = r.environment_id WHERE j.id = ${owner.buildJobId})`
      : sql`(SELECT project_id FROM ${environments} WHERE id = ${owner.environmentId})`;
  const { rows } = await db.execute<{ project_id: string; version: string | null; id: string | null; key: string; scope: string; encrypted_value: string }>(sql`
    SELECT p.id AS project_id, p.secrets_changed_at::text AS version, s.id, s.key, s.scope, s.encrypted_value
      FROM ${projects} p LEFT JOIN ${secrets} s ON s.project_id = p.id
     WHERE p.id = ${project}`);
  const values: string[] = [];
  for (const row of rows) {
    if (row.id === null) continue;
    try {
      values.push(await keyring.decrypt(row.encrypted_value, associatedData.secret({ projectId: row.project_id, key: row.key, scope: row.scope })));
    } catch (error) {
      logger.warn("a project secret could not be decrypted for log masking", { secret_id: row.id, error: (error as Error).name });
    }
  }
  return { projectId: rows[0]?.project_id ?? null, version: rows[0]?.version ?? null, mask: createMasker(values) };
}

export interface MaskerInUse extends ProjectMasker {
  /** Increases with every load, so text masked by an older load can be recognised and masked again. */
  generation: number;
}

/**
 * The one masker of an agent's assignment, cached, that also learns secrets created or changed while a job runs:
 * log inserts check the project's secrets version in the same statement (see insertLogLines) and `invalidate` it
 * when it moved; and a masker that nothing confirmed for MASKER_RECHECK_MS is reloaded before it is used, so text
 * that is not inserted that way (live tails, deploy output, error messages) is at most that stale.
 */
export class AssignmentMasker {
  private readonly load: () => Promise<ProjectMasker>;
  private current: Promise<MaskerInUse> | null = null;
  private confirmedAt = 0;
  private generation = 0;

  constructor(load: () => Promise<ProjectMasker>) {
    this.load = load;
  }

  get(): Promise<MaskerInUse> {
    if (!this.current || Date.now() - this.confirmedAt > MASKER_RECHECK_MS) {
      const generation = ++this.generation;
      const loading = this.load().then((masker) => ({ ...masker, generation }));
      this.current = loading;
      this.confirmedAt = Date.now();
      loading.catch(() => {
        if (this.current === loading) this.current = null;
      });
    }
    return this.current;
  }

  /** The database said the secrets have not changed since this masker was loaded. */
  confirm(masker: MaskerInUse): void {
    if (masker.generation === this.generation) this.confirmedAt = Date.now();
  }

  /** The secrets changed: the next `get` loads them again. */
  invalidate(): void {
    this.current = null;
  }
}
