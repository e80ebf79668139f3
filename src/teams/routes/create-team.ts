import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsert } from "../../audit/record.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { teamMembers, teams } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { slug, slugify } from "../../lib/schemas.ts";
import { teamSchema, toApiTeam } from "../model.ts";
import { forgetCachedAuth } from "../../auth/auth-cache.ts";

export const createTeam = defineRoute({
  method: "post",
  path: "/v1/teams",
  summary: "Create a team; you become its owner",
  tag: "teams",
  access: { kind: "user" },
  body: z
    .object({
      name: z.string().trim().min(1).max(100),
      slug: slug.optional().describe("defaults to the name made into a slug"),
      billing_email: z.email().max(254).optional(),
    })
    .strict(),
  example: { name: "Acme", slug: "acme", billing_email: "billing@acme.test" },
  response: teamSchema,
  status: 201,
  async handler(c, { body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const teamSlug = body.slug ?? slugify(body.name);
    if (!slug.safeParse(teamSlug).success) {
      throw new ApiError("VALIDATION_FAILED", "invalid body: slug: cannot be derived from this name; pass a slug", {
        issues: [{ path: "slug", message: "required for this name" }],
      });
    }
    const id = newId("team");
    try {
      const [[team]] = await db.batch([
        db.insert(teams).values({ id, slug: teamSlug, name: body.name, billingEmail: body.billing_email ?? null }).returning(),
        db.insert(teamMembers).values({ teamId: id, userId: auth.user.id, role: "owner" }),
        auditInsert(db, auth, { action: "team.created", resourceType: "team", resourceId: id, teamId: id, metadata: { slug: teamSlug } }),
      ]);
      forgetCachedAuth();
      return c.json(toApiTeam(team!, "owner"), 201);
    } catch (error) {
      if (databaseErrorOf(error)?.constraint === "teams_slug_key") throw new ApiError("CONFLICT", `the slug "${teamSlug}" is taken`);
      throw error;
    }
  },
});
