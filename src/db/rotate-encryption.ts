import { and, asc, eq, gt, notLike } from "drizzle-orm";
import type { Keyring } from "../lib/crypto.ts";
import type { Db } from "./client.ts";
import { associatedData } from "./encrypted-columns.ts";
import { cloudProviders, projectRegistries, secrets } from "./schema.ts";

export interface RotationProgress {
  table: "secrets" | "cloud_providers" | "project_registries";
  done: number;
  total: number;
  failed: string[];
}

export interface RotationResult {
  rotated: number;
  /** ids of rows no configured key could decrypt; they are left as they were */
  failed: string[];
  /**
   * Values still in the Go core's legacy format afterwards (counted in the database, whoever wrote them). At 0,
   * ENCRYPTION_REFUSE_LEGACY can be turned on.
   */
  legacyRemaining: number;
}

/** Every value written by this code starts with its format version (src/lib/crypto.ts); legacy values have none. */
const VERSIONED = "v1.%";

/**
 * Re-encrypts every stored secret value, cloud credential and registry password under the keyring's active key, batch by batch.
 * Each write is conditional on the old ciphertext, so a value changed meanwhile is left alone, and an interrupted
 * run resumes where it stopped: only values not yet under the active key are selected.
 */
export async function rotateEncryptedValues(
  db: Db,
  keyring: Keyring,
  options: { batchSize?: number; onProgress?: (progress: RotationProgress) => void } = {},
): Promise<RotationResult> {
  const batchSize = options.batchSize ?? 100;
  const activePrefix = `v1.${keyring.activeKeyId}.%`;
  const result: RotationResult = { rotated: 0, failed: [], legacyRemaining: 0 };

  interface Sealed {
    id: string;
    stored: string;
    aad: string;
  }
  const tables = [
    {
      name: "secrets" as const,
      count: () => db.$count(secrets, notLike(secrets.encryptedValue, activePrefix)),
      page: async (after: string): Promise<Sealed[]> =>
        (
          await db
            .select({ id: secrets.id, stored: secrets.encryptedValue, projectId: secrets.projectId, key: secrets.key, scope: secrets.scope })
            .from(secrets)
            .where(and(notLike(secrets.encryptedValue, activePrefix), gt(secrets.id, after)))
            .orderBy(asc(secrets.id))
            .limit(batchSize)
        ).map((row) => ({ id: row.id, stored: row.stored, aad: associatedData.secret(row) })),
      update: (id: string, from: string, to: string) =>
        db.update(secrets).set({ encryptedValue: to }).where(and(eq(secrets.id, id), eq(secrets.encryptedValue, from))),
    },
    {
      name: "cloud_providers" as const,
      count: () => db.$count(cloudProviders, notLike(cloudProviders.encryptedCredentials, activePrefix)),
      page: async (after: string): Promise<Sealed[]> =>
        (
          await db
            .select({ id: cloudProviders.id, stored: cloudProviders.encryptedCredentials })
            .from(cloudProviders)
            .where(and(notLike(cloudProviders.encryptedCredentials, activePrefix), gt(cloudProviders.id, after)))
            .orderBy(asc(cloudProviders.id))
            .limit(batchSize)
        ).map((row) => ({ ...row, aad: associatedData.cloudCredentials(row) })),
      update: (id: string, from: string, to: string) =>
        db
          .update(cloudProviders)
          .set({ encryptedCredentials: to })
          .where(and(eq(cloudProviders.id, id), eq(cloudProviders.encryptedCredentials, from))),
    },
    {
      name: "project_registries" as const,
      count: () => db.$count(projectRegistries, notLike(projectRegistries.encryptedPassword, activePrefix)),
      page: async (after: string): Promise<Sealed[]> =>
        (
          await db
            .select({ id: projectRegistries.projectId, stored: projectRegistries.encryptedPassword })
            .from(projectRegistries)
            .where(and(notLike(projectRegistries.encryptedPassword, activePrefix), gt(projectRegistries.projectId, after)))
            .orderBy(asc(projectRegistries.projectId))
            .limit(batchSize)
        ).map((row) => ({ id: row.id, stored: row.stored!, aad: associatedData.registryPassword({ projectId: row.id }) })),
      update: (id: string, from: string, to: string) =>
        db
          .update(projectRegistries)
          .set({ encryptedPassword: to })
          .where(and(eq(projectRegistries.projectId, id), eq(projectRegistries.encryptedPassword, from))),
    },
  ];

  for (const table of tables) {
    const total = await table.count();
    const failed: string[] = [];
    let done = 0;
    let after = "";
    options.onProgress?.({ table: table.name, done, total, failed });
    for (;;) {
      const rows = await table.page(after);
      if (rows.length === 0) break;
      const updates = [];
      for (const row of rows) {
        try {
          const plaintext = await keyring.decrypt(row.stored, row.aad);
          updates.push(table.update(row.id, row.stored, await keyring.encrypt(plaintext, row.aad)));
        } catch {
          failed.push(row.id);
        }
      }
      if (updates.length > 0) await db.batch(updates as [(typeof updates)[number], ...(typeof updates)[number][]]);
      result.rotated += updates.length;
      done += rows.length;
      after = rows[rows.length - 1]!.id;
      options.onProgress?.({ table: table.name, done, total, failed });
    }
    result.failed.push(...failed);
  }
  const [legacySecrets, legacyCredentials] = await Promise.all([
    db.$count(secrets, notLike(secrets.encryptedValue, VERSIONED)),
    db.$count(cloudProviders, notLike(cloudProviders.encryptedCredentials, VERSIONED)),
  ]);
  result.legacyRemaining = legacySecrets + legacyCredentials;
  return result;
}
