import * as z from "zod";
import { roles, type teams } from "../db/schema.ts";
import { idOf, iso, teamRef, timestamp } from "../lib/schemas.ts";

export const memberParams = z.object({ team: teamRef, user: idOf("usr") });

export const teamSchema = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  billing_email: z.string().nullable(),
  billing_plan: z.enum(["free", "pro", "enterprise"]),
  max_concurrent_environments: z.number().int(),
  max_concurrent_builds: z.number().int(),
  role: z.enum(roles).describe("the caller's role in this team"),
  created_at: timestamp,
  updated_at: timestamp,
});

export function toApiTeam(row: typeof teams.$inferSelect, role: (typeof roles)[number]): z.infer<typeof teamSchema> {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    billing_email: row.billingEmail,
    billing_plan: row.billingPlan,
    max_concurrent_environments: row.maxConcurrentEnvironments,
    max_concurrent_builds: row.maxConcurrentBuilds,
    role,
    created_at: iso(row.createdAt)!,
    updated_at: iso(row.updatedAt)!,
  };
}

export const memberSchema = z.object({
  user_id: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  github_login: z.string().nullable(),
  avatar_url: z.string().nullable(),
  role: z.enum(roles),
  joined_at: timestamp,
});

export function toApiMember(row: {
  userId: string;
  email: string;
  name: string | null;
  githubLogin: string | null;
  avatarUrl: string | null;
  role: (typeof roles)[number];
  createdAt: Date;
}): z.infer<typeof memberSchema> {
  return {
    user_id: row.userId,
    email: row.email,
    name: row.name,
    github_login: row.githubLogin,
    avatar_url: row.avatarUrl,
    role: row.role,
    joined_at: iso(row.createdAt)!,
  };
}
