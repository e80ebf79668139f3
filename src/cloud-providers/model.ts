import * as z from "zod";
import type { cloudProviders } from "../db/schema.ts";
import type { Config } from "../config.ts";
import { ApiError } from "../lib/errors.ts";
import { credentialSchemas } from "../providers/credentials.ts";
import { providerConfigSchemas, refusedInProduction } from "../providers/factory.ts";
import { supportedProviderTypes, type SupportedProviderType } from "../providers/types.ts";
import { idOf, iso, timestamp } from "../lib/schemas.ts";

const withinSize = (config: unknown) => JSON.stringify(config).length <= 16_384;

export const providerFields = {
  name: z.string().trim().min(1).max(100),
  region: z.string().trim().min(1).max(50).regex(/^[a-z0-9-]+$/, "must be a region name like eu-west-1, fra1 or nbg1"),
  /** Any object; checked against the stored provider type's config schema by the route (PATCH does not resend the type). */
  config: z.record(z.string(), z.unknown()).refine(withinSize, "must be at most 16 KiB of JSON"),
};

/** `config` of one provider type: the fields its provider documents (src/providers/<type>.ts), nothing else. */
export function providerConfig(type: SupportedProviderType): z.ZodType<Record<string, unknown>> {
  const schema: z.ZodType<Record<string, unknown>> = providerConfigSchemas[type];
  return schema.refine(withinSize, "must be at most 16 KiB of JSON");
}

/** Provider type with the credentials and config it takes, validated together when written. */
export const typedProvider = z.discriminatedUnion("provider_type", [
  z.object({ provider_type: z.literal("aws"), credentials: credentialSchemas.aws, config: providerConfig("aws").default({}) }),
  z.object({ provider_type: z.literal("digitalocean"), credentials: credentialSchemas.digitalocean, config: providerConfig("digitalocean").default({}) }),
  z.object({ provider_type: z.literal("hetzner"), credentials: credentialSchemas.hetzner, config: providerConfig("hetzner").default({}) }),
  z.object({ provider_type: z.literal("local"), credentials: credentialSchemas.local.default({}), config: providerConfig("local").default({}) }),
]);

/** On a production server, a 422 naming what it refuses (the local cloud, endpoint and URL overrides); other stages allow them. */
export function assertAllowedOnThisServer(config: Pick<Config, "STAGELY_ENV">, providerType: string, providerConfig: Record<string, unknown>): void {
  if (config.STAGELY_ENV !== "production") return;
  const issues = refusedInProduction(providerType, providerConfig);
  if (issues.length > 0) {
    throw new ApiError("UNPROCESSABLE", `not allowed on this server: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, { issues });
  }
}

export const cloudProviderParams = z.object({ id: idOf("cp") });

/** Which credential fields are stored and the last characters of the main one; never the credentials. */
export function summarizeCredentials(credentials: Record<string, string>): { fields: string[]; hint: string | null } {
  const main = credentials.access_key_id ?? credentials.api_token;
  return { fields: Object.keys(credentials).sort(), hint: main ? `…${main.slice(-4)}` : null };
}

export const cloudProviderSchema = z.object({
  id: z.string(),
  team_id: z.string(),
  name: z.string(),
  provider_type: z.enum(supportedProviderTypes),
  region: z.string(),
  config: z.record(z.string(), z.unknown()),
  is_active: z.boolean(),
  credentials: z.object({ fields: z.array(z.string()), hint: z.string().nullable() }),
  last_validated_at: timestamp.nullable(),
  validation_error: z.string().nullable(),
  created_at: timestamp,
  updated_at: timestamp,
});

export function toApiCloudProvider(row: typeof cloudProviders.$inferSelect): z.infer<typeof cloudProviderSchema> {
  return {
    id: row.id,
    team_id: row.teamId,
    name: row.name,
    provider_type: row.providerType as (typeof supportedProviderTypes)[number],
    region: row.region,
    config: row.config,
    is_active: row.isActive,
    credentials: row.credentialsSummary,
    last_validated_at: iso(row.lastValidatedAt),
    validation_error: row.validationError,
    created_at: iso(row.createdAt)!,
    updated_at: iso(row.updatedAt)!,
  };
}

export function providerConflict(constraint: string | undefined, name: string | undefined) {
  return constraint === "cloud_providers_team_name_key" ? `the team already has a cloud provider named "${name}"` : undefined;
}
