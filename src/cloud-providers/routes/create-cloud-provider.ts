import * as z from "zod";
import { configOf, dbOf, keyringOf } from "../../app-env.ts";
import { auditInsert } from "../../audit/record.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { cloudProviders } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { encryptCredentials } from "../../providers/credentials.ts";
import { assertAllowedOnThisServer, cloudProviderSchema, providerConflict, providerFields, summarizeCredentials, toApiCloudProvider, typedProvider } from "../model.ts";

export const createCloudProvider = defineRoute({
  method: "post",
  path: "/v1/teams/:team/cloud-providers",
  summary: "Connect a cloud account; credentials are encrypted and never shown again",
  tag: "cloud-providers",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamParams,
  body: z.intersection(z.object({ name: providerFields.name, region: providerFields.region }), typedProvider),
  example: { name: "hetzner-prod", provider_type: "hetzner", region: "nbg1", credentials: { api_token: "hcloud-example-token-0123456789abcdef" } },
  response: cloudProviderSchema,
  status: 201,
  async handler(c, { body, team: membership }) {
    const auth = c.get("auth");
    assertAllowedOnThisServer(configOf(c), body.provider_type, body.config);
    const db = dbOf(c);
    const id = newId("cloudProvider");
    const credentials = body.credentials as Record<string, string>;
    const sealed = await encryptCredentials(await keyringOf(c), { id }, credentials);
    try {
      const [[provider]] = await db.batch([
        db
          .insert(cloudProviders)
          .values({
            id,
            teamId: membership.teamId,
            name: body.name,
            providerType: body.provider_type,
            region: body.region,
            config: body.config,
            encryptedCredentials: sealed,
            credentialsSummary: summarizeCredentials(credentials),
          })
          .returning(),
        auditInsert(db, auth, {
          action: "cloud_provider.created",
          resourceType: "cloud_provider",
          resourceId: id,
          teamId: membership.teamId,
          metadata: { name: body.name, provider_type: body.provider_type, region: body.region },
        }),
      ]);
      return c.json(toApiCloudProvider(provider!), 201);
    } catch (error) {
      const conflict = providerConflict(databaseErrorOf(error)?.constraint, body.name);
      if (conflict) throw new ApiError("CONFLICT", conflict);
      throw error;
    }
  },
});
