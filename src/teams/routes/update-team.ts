import { and, eq, isNull } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsert } from "../../audit/record.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { teams } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { slug, teamParams } from "../../lib/schemas.ts";
import { teamSchema, toApiTeam } from "../model.ts";
import { forgetCachedAuth } from "../../auth/auth-cache.ts";

const quota = z.number().int().min(1).max(1000);

export const updateTeam = defineRoute({
  method: "patch",
  path: "/v1/teams/:team",
  summary: "Change a team's name, slug, billing email or quotas",
  tag: "teams",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamParams,
  body: z
    .object({
      name: z.string().trim().min(1).max(100).optional(),
      slug: slug.optional(),
      billing_email: z.email().max(254).nullable().optional(),
      max_concurrent_environments: quota.optional(),
      max_concurrent_builds: quota.optional(),
    })
    .strict()
    .refine((b) => Object.keys(b).length > 0, "send at least one field to change"),
  example: { name: "Acme Inc.", max_concurrent_environments: 8 },
  response: teamSchema,
  async handler(c, { params, body, team: membership }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const changes = {
      name: body.name,
      slug: body.slug,
      billingEmail: body.billing_email,
      maxConcurrentEnvironments: body.max_concurrent_environments,
      maxConcurrentBuilds: body.max_concurrent_builds,
    };
    try {
      const [[team]] = await db.batch([
        db.update(teams).set(changes).where(and(eq(teams.id, membership.teamId), isNull(teams.deletedAt))).returning(),
        auditInsert(db, auth, {
          action: "team.updated",
          resourceType: "team",
          resourceId: membership.teamId,
          teamId: membership.teamId,
          metadata: { changed: Object.keys(body) },
        }),
      ]);
      if (!team) throw new ApiError("NOT_FOUND", `team ${params.team} not found`);
      forgetCachedAuth();
      return c.json(toApiTeam(team, membership.role));
    } catch (error) {
      if (databaseErrorOf(error)?.constraint === "teams_slug_key") throw new ApiError("CONFLICT", `the slug "${body.slug}" is taken`);
      throw error;
    }
  },
});
