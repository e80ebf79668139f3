import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { associatedData } from "../db/encrypted-columns.ts";
import { buildJobs, environments, secrets, workflowRuns } from "../db/schema.ts";
import type { Keyring } from "../lib/crypto.ts";
import type { Logger } from "../lib/logger.ts";
import { createMasker, type Masker } from "./masker.ts";

/**
 * The masker for a build job: the decrypted secrets of the job's project, one query. A secret that cannot be
 * decrypted is skipped with a warning naming its id (never its value); a database failure throws so the caller
 * stores nothing unmasked.
 */
export async function loadJobMasker(db: Db, keyring: Keyring, jobId: string, logger: Logger): Promise<Masker> {
  const rows = await db
    .select({ id: secrets.id, projectId: secrets.projectId, key: secrets.key, scope: secrets.scope, encryptedValue: secrets.encryptedValue })
    .from(buildJobs)
    .innerJoin(workflowRuns, eq(workflowRuns.id, buildJobs.workflowRunId))
    .innerJoin(environments, eq(environments.id, workflowRuns.environmentId))
    .innerJoin(secrets, eq(secrets.projectId, environments.projectId))
    .where(eq(buildJobs.id, jobId));
  const values: string[] = [];
  for (const row of rows) {
    try {
      values.push(await keyring.decrypt(row.encryptedValue, associatedData.secret(row)));
    } catch (error) {
      logger.warn("a project secret could not be decrypted for log masking", { secret_id: row.id, error: (error as Error).name });
    }
  }
  return createMasker(values);
}
