import { and, eq, inArray, sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf, keyringOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { associatedData } from "../../db/encrypted-columns.ts";
import { projects, secrets } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { projectParams } from "../../projects/model.ts";
import { readyEnvironments, redeployReadyEnvironments } from "../redeploy.ts";
import { checkSecretShape, secretColumns, secretFields, secretSchema, toApiSecret } from "../model.ts";

export const createSecret = defineRoute({
  method: "post",
  path: "/v1/projects/:id/secrets",
  summary: "Add a secret to a project (global, or for one compose service); its value can never be read back",
  tag: "secrets",
  access: { kind: "team", minRole: "admin", resource: "project" },
  params: projectParams,
  body: z
    .object({
      key: secretFields.key,
      value: secretFields.value,
      scope: secretFields.scope,
      secret_type: secretFields.secret_type.default("env"),
      file_path: secretFields.file_path.optional(),
      file_permissions: secretFields.file_permissions.optional(),
    })
    .strict()
    .superRefine(checkSecretShape),
  example: { key: "DATABASE_PASSWORD", value: "correct-horse-battery-staple", scope: "global" },
  response: secretSchema,
  status: 201,
  async handler(c, { params, body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const id = newId("secret");
    const keyring = await keyringOf(c);
    const sealed = await keyring.encrypt(body.value, associatedData.secret({ projectId: params.id, key: body.key, scope: body.scope }));
    const writable = and(eq(projects.id, params.id), inArray(projects.teamId, teamIdsWithRole(auth, "admin")));
    const filePermissions = body.secret_type === "file" ? (body.file_permissions ?? "0600") : null;
    try {
      const [, inserted, , [secret], ready] = await db.batch([
        auditInsertWhere(
          db,
          auth,
          { action: "secret.created", resourceType: "secret", resourceId: id, metadata: { key: body.key, scope: body.scope, secret_type: body.secret_type } },
          { from: sql`FROM ${projects} WHERE ${writable}`, teamId: sql`${projects.teamId}`, projectId: sql`${projects.id}` },
        ),
        db.execute(sql`
          INSERT INTO ${secrets} (id, project_id, key, encrypted_value, scope, secret_type, file_path, file_permissions, created_by)
          SELECT ${id}, ${projects.id}, ${body.key}, ${sealed}, ${body.scope}, ${body.secret_type}, ${body.file_path ?? null},
                 ${filePermissions}, ${auth.user.id}
            FROM ${projects} WHERE ${writable}`),
        db.update(projects).set({ secretsChangedAt: sql`now()` }).where(writable),
        db.select(secretColumns).from(secrets).where(eq(secrets.id, id)),
        readyEnvironments(db, params.id),
      ]);
      if (inserted.rowCount === 0 || !secret) {
        throw await explainMiss(db, auth, { what: "project", id: params.id, teamOf: sql`SELECT team_id FROM ${projects} WHERE id = ${params.id}`, minRole: "admin" });
      }
      await redeployReadyEnvironments(c, ready);
      return c.json(toApiSecret(secret), 201);
    } catch (error) {
      if (databaseErrorOf(error)?.constraint === "secrets_project_key_scope_key") {
        throw new ApiError("CONFLICT", `the project already has a secret ${body.key} for scope ${body.scope}; change it with PATCH /v1/secrets/:id`);
      }
      throw error;
    }
  },
});
