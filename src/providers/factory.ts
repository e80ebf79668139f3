import * as z from "zod";
import type { Config } from "../config.ts";
import { associatedData } from "../db/encrypted-columns.ts";
import type { cloudProviders } from "../db/schema.ts";
import type { Keyring } from "../lib/crypto.ts";
import type { FieldIssue } from "../lib/errors.ts";
import { awsConfigSchema, createAwsProvider, ecrAuthorization } from "./aws.ts";
import { credentialSchemas } from "./credentials.ts";
import { createDigitalOceanProvider, digitalOceanConfigSchema, digitalOceanRegistryCredentials } from "./digitalocean.ts";
import { ProviderError } from "./errors.ts";
import { createHetznerProvider, hetznerConfigSchema } from "./hetzner.ts";
import type { HttpOptions } from "./http.ts";
import { createLocalProvider, localConfigSchema } from "./local.ts";
import { checkRegion } from "./spec.ts";
import { supportedProviderTypes, type CloudProvider, type SupportedProviderType } from "./types.ts";

/** What a provider is built from: one `cloud_providers` row. */
export type ProviderRow = Pick<typeof cloudProviders.$inferSelect, "id" | "providerType" | "encryptedCredentials" | "region" | "config">;

/** The shape of `cloud_providers.config` per provider type (the management API validates input with these). */
export const providerConfigSchemas = {
  aws: awsConfigSchema,
  digitalocean: digitalOceanConfigSchema,
  hetzner: hetznerConfigSchema,
  local: localConfigSchema,
} satisfies Record<SupportedProviderType, z.ZodType>;

/** What a provider object is built with: how to reach the cloud, and the server's stage (production has stricter rules). */
export interface ProviderOptions extends HttpOptions {
  stage: Config["STAGELY_ENV"];
}

const urlLike = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * What a production server refuses in a provider: the local cloud, and any override that would send the team's
 * credentials somewhere other than the cloud's own API (`config.endpoint`, or any URL in config). Tests and
 * development keep them (they point providers at fakes and at the local cloud).
 */
export function refusedInProduction(providerType: string, config: Record<string, unknown>): FieldIssue[] {
  const issues: FieldIssue[] = [];
  if (providerType === "local") {
    issues.push({ path: "provider_type", message: "the local cloud is for development and tests, not a production server" });
  }
  const pending: { value: unknown; path: string }[] = Object.entries(config).map(([key, value]) => ({ value, path: `config.${key}` }));
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (path === "config.endpoint") {
      issues.push({ path, message: "endpoint overrides are not allowed on a production server: the cloud's own API is used" });
    } else if (typeof value === "string" && urlLike.test(value)) {
      issues.push({ path, message: "URL overrides are not allowed on a production server" });
    } else if (value !== null && typeof value === "object") {
      for (const [key, item] of Object.entries(value)) pending.push({ value: item, path: `${path}.${key}` });
    }
  }
  return issues;
}

function isSupported(type: string): type is SupportedProviderType {
  return (supportedProviderTypes as readonly string[]).includes(type);
}

/** Names the failing fields and rules, never the values. */
function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "(root)"} ${issue.message}`).join("; ");
}

async function decryptCredentials<T extends SupportedProviderType>(row: ProviderRow, type: T, keyring: Keyring) {
  let plaintext: string;
  try {
    plaintext = await keyring.decrypt(row.encryptedCredentials, associatedData.cloudCredentials(row));
  } catch {
    throw new ProviderError("invalid_credentials", "the stored credentials cannot be decrypted; enter them again");
  }
  let json: unknown;
  try {
    json = JSON.parse(plaintext);
  } catch {
    throw new ProviderError("invalid_credentials", "the stored credentials are not valid JSON; enter them again");
  }
  const result = credentialSchemas[type].safeParse(json);
  if (!result.success) throw new ProviderError("invalid_credentials", `the stored credentials are incomplete: ${describeIssues(result.error)}`);
  return result.data as z.infer<(typeof credentialSchemas)[T]>;
}

function parseConfig<T extends SupportedProviderType>(row: ProviderRow, type: T) {
  const result = providerConfigSchemas[type].safeParse(row.config ?? {});
  if (!result.success) throw new ProviderError("unsupported", `the provider's config is invalid: ${describeIssues(result.error)}`);
  return result.data as z.infer<(typeof providerConfigSchemas)[T]>;
}

/**
 * The cloud provider of one `cloud_providers` row, with its credentials decrypted: one object per row and call
 * site, never shared between teams. Throws a ProviderError for an unsupported type, credentials that cannot be read
 * (invalid_credentials), a bad config, or, on a production server, what production refuses (a row written before
 * that rule, or by hand).
 */
export async function providerFromRow(row: ProviderRow, keyring: Keyring, options: ProviderOptions): Promise<CloudProvider> {
  const type = row.providerType;
  if (!isSupported(type)) throw new ProviderError("unsupported", `provider type ${type} is not supported yet`);
  if (options.stage === "production") {
    const refused = refusedInProduction(type, row.config ?? {});
    if (refused.length > 0) {
      throw new ProviderError("unsupported", `refused on a production server: ${refused.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
    }
  }
  const region = checkRegion(row.region);
  switch (type) {
    case "aws":
      return createAwsProvider({ credentials: await decryptCredentials(row, type, keyring), region, config: parseConfig(row, type), http: options });
    case "digitalocean":
      return createDigitalOceanProvider({ credentials: await decryptCredentials(row, type, keyring), region, config: parseConfig(row, type), http: options });
    case "hetzner":
      return createHetznerProvider({ credentials: await decryptCredentials(row, type, keyring), region, config: parseConfig(row, type), http: options });
    case "local":
      // Needs no credentials: whatever is stored is not read.
      return createLocalProvider({ region, config: parseConfig(row, type), http: options });
  }
}

/**
 * For `POST /v1/cloud-providers/:id/validate`: whether the row's credentials work, with a message safe to show the
 * team (it never contains a credential). Also fails for credentials that cannot be decrypted and for a bad config.
 */
export async function validateProviderCredentials(
  row: ProviderRow,
  keyring: Keyring,
  options: ProviderOptions,
): Promise<{ ok: true } | { ok: false; error: string }> {
  try {
    await (await providerFromRow(row, keyring, options)).validateCredentials();
    return { ok: true };
  } catch (error) {
    if (error instanceof ProviderError) return { ok: false, error: error.message };
    throw error;
  }
}

/**
 * Docker credentials for a registry reached through a cloud account: ECR (GetAuthorizationToken, 12 hours) on an AWS
 * account, DigitalOcean's registry (expiring docker-credentials) on a DigitalOcean account. A registry kind the
 * account's type cannot serve is an "unsupported" ProviderError naming both.
 */
export async function registryCredentialsFromRow(
  row: ProviderRow,
  keyring: Keyring,
  options: ProviderOptions,
  registry: { kind: "ecr"; region: string | null } | { kind: "digitalocean"; registryName: string; expirySeconds: number },
): Promise<{ registry: string; username: string; password: string }> {
  if (options.stage === "production") {
    const refused = refusedInProduction(row.providerType, row.config ?? {});
    if (refused.length > 0) throw new ProviderError("unsupported", `refused on a production server: ${refused.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  }
  if (registry.kind === "ecr" && row.providerType === "aws") {
    return ecrAuthorization({ credentials: await decryptCredentials(row, "aws", keyring), region: registry.region ?? row.region ?? "", config: parseConfig(row, "aws"), http: options });
  }
  if (registry.kind === "digitalocean" && row.providerType === "digitalocean") {
    return digitalOceanRegistryCredentials({
      credentials: await decryptCredentials(row, "digitalocean", keyring),
      config: parseConfig(row, "digitalocean"),
      registryName: registry.registryName,
      expirySeconds: registry.expirySeconds,
      http: options,
    });
  }
  const needs = registry.kind === "ecr" ? "an AWS" : "a DigitalOcean";
  throw new ProviderError("unsupported", `a ${registry.kind} registry needs ${needs} cloud account on the project, not ${row.providerType}`);
}
