import { sql } from "drizzle-orm";
import { associatedData } from "../db/encrypted-columns.ts";
import { projectRegistries, projects, type cloudProviders } from "../db/schema.ts";
import { ProviderError } from "../providers/errors.ts";
import { registryCredentialsFromRow } from "../providers/factory.ts";
import type { PipelineContext } from "../pipeline/context.ts";

export type RegistryRow = typeof projectRegistries.$inferSelect;

/** Long enough for a build's push or a deploy's pull; DigitalOcean's credentials expire after this. */
const DIGITALOCEAN_EXPIRY_SECONDS = 2 * 60 * 60;

/**
 * Where images go (`address`, prefixed to image names) and the credentials BUILD and DEPLOY carry (`registry_auth`):
 * the stored ones for a generic registry, fresh ones from the cloud account for ECR and DigitalOcean. Throws a
 * ProviderError (retryable or not) when the cloud cannot give them.
 */
export async function registryLogin(
  ctx: PipelineContext,
  registry: RegistryRow,
  provider: typeof cloudProviders.$inferSelect | null,
): Promise<{ address: string; auth: { registry: string; username: string; password: string } }> {
  if (registry.kind === "generic") {
    const password = await ctx.keyring.decrypt(registry.encryptedPassword!, associatedData.registryPassword(registry));
    return { address: registry.address!, auth: { registry: registry.address!.split("/")[0]!, username: registry.username!, password } };
  }
  if (!provider) throw new ProviderError("unsupported", `a ${registry.kind} registry needs the project's cloud account, and the project has none`);
  const options = { stage: ctx.config.STAGELY_ENV };
  if (registry.kind === "ecr") {
    const auth = await registryCredentialsFromRow(provider, ctx.keyring, options, { kind: "ecr", region: registry.region });
    return { address: auth.registry, auth };
  }
  const auth = await registryCredentialsFromRow(provider, ctx.keyring, options, { kind: "digitalocean", registryName: registry.registryName!, expirySeconds: DIGITALOCEAN_EXPIRY_SECONDS });
  return { address: `${auth.registry}/${registry.registryName}`, auth };
}

/** A column of a query over `projects`: the project has a registry (registry mode) rather than building on its preview VM. */
export const projectHasRegistry = sql<boolean>`EXISTS (SELECT 1 FROM ${projectRegistries} WHERE ${projectRegistries.projectId} = ${projects.id})`;
