import * as z from "zod";
import { associatedData } from "../db/encrypted-columns.ts";
import type { Keyring } from "../lib/crypto.ts";
import type { SupportedProviderType } from "./types.ts";

const apiToken = z.string().trim().min(20, "must be at least 20 characters").max(200, "must be at most 200 characters");

/**
 * What a team enters for each provider type (the management API validates input with these). Stored encrypted as
 * JSON in `cloud_providers.encrypted_credentials`, bound to the row (see encryptCredentials).
 */
export const credentialSchemas = {
  aws: z.strictObject({
    access_key_id: z.string().trim().regex(/^[A-Z0-9]{16,128}$/, "must be an AWS access key id (AKIA…)"),
    secret_access_key: z.string().trim().min(16, "must be at least 16 characters").max(128, "must be at most 128 characters"),
  }),
  digitalocean: z.strictObject({ api_token: apiToken }),
  hetzner: z.strictObject({ api_token: apiToken }),
  local: z.strictObject({}),
} satisfies Record<SupportedProviderType, z.ZodType>;

export type Credentials<T extends SupportedProviderType> = z.infer<(typeof credentialSchemas)[T]>;

/** The stored form of validated credentials for the row with this id. */
export function encryptCredentials(keyring: Keyring, row: { id: string }, credentials: object): Promise<string> {
  return keyring.encrypt(JSON.stringify(credentials), associatedData.cloudCredentials(row));
}
