import { and, eq, inArray, sql } from "drizzle-orm";
import { dbOf, keyringOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { associatedData } from "../../db/encrypted-columns.ts";
import { projectRegistries, projects } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { defineRoute } from "../../lib/route.ts";
import { projectParams } from "../../projects/model.ts";
import { registryInput, registrySchema, toApiRegistry } from "../model.ts";

/** A project_registries row as the raw SQL statement returns it. */
type RawRegistry = {
  project_id: string;
  kind: (typeof projectRegistries.$inferSelect)["kind"];
  address: string | null;
  username: string | null;
  encrypted_password: string | null;
  region: string | null;
  registry_name: string | null;
  updated_by: string | null;
  created_at: string;
  updated_at: string;
};

export const putRegistry = defineRoute({
  method: "put",
  path: "/v1/projects/:id/registry",
  summary:
    "Set the project's container registry (registry mode: builder VMs push there and previews pull by digest). generic: address, username, password (write-only); ecr or digitalocean: through the project's cloud account",
  tag: "projects",
  access: { kind: "team", minRole: "admin", resource: "project" },
  params: projectParams,
  body: registryInput,
  example: { kind: "generic", address: "registry.example.com/acme", username: "stagely", password: "a-registry-password" },
  response: registrySchema,
  async handler(c, { params, body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const project = and(eq(projects.id, params.id), inArray(projects.teamId, teamIdsWithRole(auth, "admin")));
    const sealed = body.kind === "generic" ? await (await keyringOf(c)).encrypt(body.password, associatedData.registryPassword({ projectId: params.id })) : null;
    const values = {
      kind: body.kind,
      address: body.kind === "generic" ? body.address : null,
      username: body.kind === "generic" ? body.username : null,
      encryptedPassword: sealed,
      region: body.kind === "ecr" ? (body.region ?? null) : null,
      registryName: body.kind === "digitalocean" ? body.registry_name : null,
      updatedBy: auth.user.id,
    };
    const [, saved] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "project.registry_set", resourceType: "project", resourceId: params.id, metadata: { kind: body.kind } },
        { from: sql`FROM ${projects} WHERE ${project}`, teamId: sql`${projects.teamId}`, projectId: sql`${projects.id}` },
      ),
      db.execute<RawRegistry>(sql`
        INSERT INTO ${projectRegistries} (project_id, kind, address, username, encrypted_password, region, registry_name, updated_by)
        SELECT ${projects.id}, ${values.kind}, ${values.address}, ${values.username}, ${values.encryptedPassword}, ${values.region}, ${values.registryName}, ${values.updatedBy}
          FROM ${projects} WHERE ${project}
        ON CONFLICT (project_id) DO UPDATE SET kind = EXCLUDED.kind, address = EXCLUDED.address, username = EXCLUDED.username,
          encrypted_password = EXCLUDED.encrypted_password, region = EXCLUDED.region, registry_name = EXCLUDED.registry_name, updated_by = EXCLUDED.updated_by
        RETURNING *`),
    ]);
    if (saved.rows.length === 0) {
      throw await explainMiss(db, auth, { what: "project", id: params.id, teamOf: sql`SELECT team_id FROM ${projects} WHERE id = ${params.id}`, minRole: "admin" });
    }
    const row = saved.rows[0]!;
    return c.json(
      toApiRegistry({
        projectId: row.project_id,
        kind: row.kind,
        address: row.address,
        username: row.username,
        encryptedPassword: row.encrypted_password,
        region: row.region,
        registryName: row.registry_name,
        updatedBy: row.updated_by,
        createdAt: new Date(row.created_at),
        updatedAt: new Date(row.updated_at),
      }),
    );
  },
});
