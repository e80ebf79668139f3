import * as z from "zod";
import type { projectRegistries } from "../db/schema.ts";

/** host[:port][/namespace]: where images are pushed, as `docker login` and image names use it (no scheme). */
const address = z
  .string()
  .trim()
  .max(255)
  .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, "must be a registry host[:port][/namespace] in lowercase, without a scheme (e.g. registry.example.com/team)");
const awsRegion = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "must be an AWS region such as us-east-1");

/** PUT body: one registry per project, replacing any earlier one. Credentials are write-only. */
export const registryInput = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("generic"),
    address,
    username: z.string().min(1, "must not be empty").max(255),
    password: z.string().min(1, "must not be empty").max(4096),
  }),
  z.strictObject({
    kind: z.literal("ecr").describe("Amazon ECR through the project's AWS cloud account (GetAuthorizationToken)"),
    region: awsRegion.optional().describe("default: the cloud account's region"),
  }),
  z.strictObject({
    kind: z.literal("digitalocean").describe("DigitalOcean's registry through the project's DigitalOcean cloud account"),
    registry_name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be a DigitalOcean registry name (lowercase letters, digits, -)"),
  }),
]);
export type RegistryInput = z.infer<typeof registryInput>;

export const registrySchema = z.object({
  project_id: z.string(),
  kind: z.enum(["generic", "ecr", "digitalocean"]),
  address: z.string().nullable(),
  username: z.string().nullable(),
  /** Only whether one is set: the password is never returned. */
  has_password: z.boolean(),
  region: z.string().nullable(),
  registry_name: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

export function toApiRegistry(row: typeof projectRegistries.$inferSelect): z.infer<typeof registrySchema> {
  return {
    project_id: row.projectId,
    kind: row.kind,
    address: row.address,
    username: row.username,
    has_password: row.encryptedPassword !== null,
    region: row.region,
    registry_name: row.registryName,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
