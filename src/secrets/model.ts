import * as z from "zod";
import { secrets, secretTypes } from "../db/schema.ts";
import { idOf, iso, timestamp } from "../lib/schemas.ts";

export const MAX_ENV_VALUE_BYTES = 32 * 1024;
export const MAX_FILE_VALUE_BYTES = 256 * 1024;

export const secretFields = {
  key: z.string().max(128).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name (letters, digits, _; not starting with a digit)"),
  scope: z
    .string()
    .max(63)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be "global" or a docker compose service name')
    .default("global"),
  value: z.string().min(1, "must not be empty"),
  secret_type: z.enum(secretTypes),
  file_path: z
    .string()
    .max(255)
    .regex(/^[A-Za-z0-9_.\-/]+$/, "may contain letters, digits, _ . - and /")
    .refine((p) => !p.startsWith("/") && !p.split("/").includes("..") && !p.split("/").includes(""), "must be a relative path inside the repository, without .. or empty segments")
    .describe("where the file is written, relative to the repository's checkout on the preview VM (no leading /, no .., no empty segments), e.g. config/credentials.json"),
  file_permissions: z.string().regex(/^0[0-7]{3}$/, "must be an octal mode like 0600"),
};

/** Type-dependent rules shared by create and update. */
export function checkSecretShape(
  value: { secret_type?: string; file_path?: string | null; value?: string },
  ctx: z.RefinementCtx,
): void {
  if (value.secret_type === "file" && !value.file_path) ctx.addIssue({ code: "custom", path: ["file_path"], message: "is required for a file secret" });
  if (value.secret_type === "env" && value.file_path) ctx.addIssue({ code: "custom", path: ["file_path"], message: "is only for file secrets" });
  if (value.value !== undefined) {
    const limit = value.secret_type === "file" ? MAX_FILE_VALUE_BYTES : MAX_ENV_VALUE_BYTES;
    if (new TextEncoder().encode(value.value).length > limit) {
      ctx.addIssue({ code: "custom", path: ["value"], message: `must be at most ${limit / 1024} KiB for a ${value.secret_type ?? "env"} secret` });
    }
  }
}

export const secretParams = z.object({ id: idOf("sec") });

export const secretSchema = z.object({
  id: z.string(),
  project_id: z.string(),
  key: z.string(),
  scope: z.string(),
  secret_type: z.enum(secretTypes),
  file_path: z.string().nullable(),
  file_permissions: z.string().nullable(),
  created_by: z.string().nullable(),
  created_at: timestamp,
  updated_at: timestamp,
});

/** Every column but the ciphertext, which never leaves the database through the API. */
export const secretColumns = {
  id: secrets.id,
  projectId: secrets.projectId,
  key: secrets.key,
  scope: secrets.scope,
  secretType: secrets.secretType,
  filePath: secrets.filePath,
  filePermissions: secrets.filePermissions,
  createdBy: secrets.createdBy,
  createdAt: secrets.createdAt,
  updatedAt: secrets.updatedAt,
};

/** The API object of a secret: everything but its value, which no endpoint ever returns. */
export function toApiSecret(row: Omit<typeof secrets.$inferSelect, "encryptedValue">): z.infer<typeof secretSchema> {
  return {
    id: row.id,
    project_id: row.projectId,
    key: row.key,
    scope: row.scope,
    secret_type: row.secretType,
    file_path: row.filePath,
    file_permissions: row.filePermissions,
    created_by: row.createdBy,
    created_at: iso(row.createdAt)!,
    updated_at: iso(row.updatedAt)!,
  };
}
