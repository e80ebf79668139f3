import { and, eq, inArray, sql } from "drizzle-orm";
import * as z from "zod";
import { configOf, dbOf, keyringOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { cloudProviders } from "../../db/schema.ts";
import { explainMiss } from "../../lib/access.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { credentialSchemas, encryptCredentials } from "../../providers/credentials.ts";
import type { SupportedProviderType } from "../../providers/types.ts";
import {
  assertAllowedOnThisServer,
  cloudProviderParams,
  cloudProviderSchema,
  providerConfig,
  providerConflict,
  providerFields,
  summarizeCredentials,
  toApiCloudProvider,
} from "../model.ts";

const teamOf = (id: string) => sql`SELECT team_id FROM ${cloudProviders} WHERE id = ${id}`;

/** A field that can only be checked once the stored provider type is known: its value, or a 400 naming the failing parts. */
function checked<T extends z.ZodType>(field: string, schema: T | undefined, value: unknown): z.output<T> {
  const parsed = schema?.safeParse(value);
  if (parsed?.success) return parsed.data;
  const issues = parsed?.error.issues.map((i) => ({ path: [field, ...i.path].join("."), message: i.message })) ?? [{ path: field, message: "not supported for this provider type" }];
  throw new ApiError("VALIDATION_FAILED", `invalid body: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, { issues });
}

export const updateCloudProvider = defineRoute({
  method: "patch",
  path: "/v1/cloud-providers/:id",
  summary: "Rename a cloud account, change its region or config, or replace its credentials",
  tag: "cloud-providers",
  access: { kind: "team", minRole: "admin", resource: "cloud_provider" },
  params: cloudProviderParams,
  body: z
    .object({
      name: providerFields.name.optional(),
      region: providerFields.region.optional(),
      config: providerFields.config.optional().describe("replaces the stored config; the fields of the provider type"),
      is_active: z.boolean().optional(),
      credentials: z.record(z.string(), z.string()).optional().describe("replaces the stored credentials; same fields as on create"),
    })
    .strict()
    .refine((b) => Object.keys(b).length > 0, "send at least one field to change"),
  example: { name: "hetzner-staging", region: "fsn1" },
  response: cloudProviderSchema,
  async handler(c, { params, body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const writable = and(eq(cloudProviders.id, params.id), inArray(cloudProviders.teamId, teamIdsWithRole(auth, "admin")));
    let sealed: { encryptedCredentials: string; credentialsSummary: { fields: string[]; hint: string | null } } | undefined;
    let config: Record<string, unknown> | undefined;
    if (body.credentials || body.config) {
      // Credentials and config are checked against the stored provider type, so that is read first.
      const [current] = await db.select({ type: cloudProviders.providerType }).from(cloudProviders).where(writable);
      if (!current) throw await explainMiss(db, auth, { what: "cloud provider", id: params.id, teamOf: teamOf(params.id), minRole: "admin" });
      const type = current.type as SupportedProviderType;
      if (body.config) {
        config = checked("config", providerConfig(type), body.config);
        assertAllowedOnThisServer(configOf(c), type, config);
      }
      if (body.credentials) {
        const credentials = checked("credentials", credentialSchemas[type], body.credentials) as Record<string, string>;
        sealed = {
          encryptedCredentials: await encryptCredentials(await keyringOf(c), { id: params.id }, credentials),
          credentialsSummary: summarizeCredentials(credentials),
        };
      }
    }
    try {
      const [, [provider]] = await db.batch([
        auditInsertWhere(
          db,
          auth,
          { action: "cloud_provider.updated", resourceType: "cloud_provider", resourceId: params.id, metadata: { changed: Object.keys(body) } },
          { from: sql`FROM ${cloudProviders} WHERE ${writable}`, teamId: sql`${cloudProviders.teamId}`, projectId: sql`NULL` },
        ),
        db
          .update(cloudProviders)
          .set({
            name: body.name,
            region: body.region,
            config,
            isActive: body.is_active,
            ...(sealed ? { ...sealed, lastValidatedAt: null, validationError: null } : {}),
          })
          .where(writable)
          .returning(),
      ]);
      if (!provider) throw await explainMiss(db, auth, { what: "cloud provider", id: params.id, teamOf: teamOf(params.id), minRole: "admin" });
      return c.json(toApiCloudProvider(provider));
    } catch (error) {
      const conflict = providerConflict(databaseErrorOf(error)?.constraint, body.name);
      if (conflict) throw new ApiError("CONFLICT", conflict);
      throw error;
    }
  },
});
