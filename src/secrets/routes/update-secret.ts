import { and, eq, inArray, sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf, keyringOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { associatedData } from "../../db/encrypted-columns.ts";
import { projects, secrets } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { readyEnvironments, redeployReadyEnvironments } from "../redeploy.ts";
import { checkSecretShape, secretColumns, secretFields, secretParams, secretSchema, toApiSecret } from "../model.ts";

const teamOfSecret = (id: string) => sql`SELECT p.team_id FROM ${secrets} s JOIN ${projects} p ON p.id = s.project_id WHERE s.id = ${id}`;

export const updateSecret = defineRoute({
  method: "patch",
  path: "/v1/secrets/:id",
  summary: "Change a secret's value or file settings (key and scope are fixed: delete and re-create to rename)",
  tag: "secrets",
  access: { kind: "team", minRole: "admin", resource: "secret" },
  params: secretParams,
  body: z
    .object({
      value: secretFields.value.optional(),
      secret_type: secretFields.secret_type.optional(),
      file_path: secretFields.file_path.nullable().optional(),
      file_permissions: secretFields.file_permissions.nullable().optional(),
    })
    .strict()
    .refine((b) => Object.keys(b).length > 0, "send at least one field to change")
    .superRefine(checkSecretShape),
  example: { value: "a-new-value-0123456789" },
  response: secretSchema,
  async handler(c, { params, body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const adminTeams = teamIdsWithRole(auth, "admin");
    // The new value is sealed to the secret's project, key and scope, so those are read first.
    const [current] = await db
      .select(secretColumns)
      .from(secrets)
      .innerJoin(projects, eq(projects.id, secrets.projectId))
      .where(and(eq(secrets.id, params.id), inArray(projects.teamId, adminTeams)));
    if (!current) {
      throw await explainMiss(db, auth, { what: "secret", id: params.id, teamOf: teamOfSecret(params.id), minRole: "admin" });
    }
    const secretType = body.secret_type ?? current.secretType;
    const filePath = body.file_path !== undefined ? body.file_path : current.filePath;
    if (secretType === "file" && !filePath) throw new ApiError("VALIDATION_FAILED", "invalid body: file_path: is required for a file secret", { issues: [{ path: "file_path", message: "is required for a file secret" }] });
    const sealed = body.value === undefined ? undefined : await (await keyringOf(c)).encrypt(body.value, associatedData.secret(current));
    const writable = and(
      eq(secrets.id, params.id),
      sql`${secrets.projectId} IN (SELECT id FROM ${projects} WHERE ${inArray(projects.teamId, adminTeams)})`,
    );
    const [, [secret], , ready] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "secret.updated", resourceType: "secret", resourceId: params.id, metadata: { key: current.key, scope: current.scope, changed: Object.keys(body) } },
        { from: sql`FROM ${secrets} WHERE ${writable}`, teamId: sql`(SELECT team_id FROM ${projects} WHERE id = ${secrets.projectId})`, projectId: sql`${secrets.projectId}` },
      ),
      db
        .update(secrets)
        .set({
          encryptedValue: sealed,
          secretType,
          filePath: secretType === "file" ? filePath : null,
          filePermissions: secretType === "file" ? (body.file_permissions ?? current.filePermissions ?? "0600") : null,
        })
        .where(writable)
        .returning(secretColumns),
      db.update(projects).set({ secretsChangedAt: sql`now()` }).where(eq(projects.id, current.projectId)),
      readyEnvironments(db, current.projectId),
    ]);
    if (!secret) throw new ApiError("NOT_FOUND", `secret ${params.id} not found`);
    await redeployReadyEnvironments(c, ready);
    return c.json(toApiSecret(secret));
  },
});
