import { sql } from "drizzle-orm";
import { z } from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsert } from "../../audit/record.ts";
import { requireRole, requireTeamRole } from "../../auth/roles.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { roles, teamMembers, users } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { memberSchema, toApiMember } from "../model.ts";

export const addMember = defineRoute({
  method: "post",
  path: "/v1/teams/:team/members",
  summary: "Add an existing Stagely user to the team, by email or GitHub login",
  tag: "teams",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamParams,
  body: z
    .object({
      email: z.email().max(254).optional(),
      github_login: z.string().regex(/^[A-Za-z0-9-]{1,39}$/, "must be a GitHub login").optional(),
      role: z.enum(roles).default("member"),
    })
    .strict()
    .refine((b) => (b.email === undefined) !== (b.github_login === undefined), "send exactly one of email and github_login"),
  example: { email: "dev@acme.test", role: "member" },
  response: memberSchema,
  status: 201,
  async handler(c, { params, body }) {
    const auth = c.get("auth");
    const membership = requireTeamRole(auth, params.team, "admin");
    if (body.role === "owner") requireRole(membership, "owner");
    const db = dbOf(c);
    const [user] = await db
      .select()
      .from(users)
      .where(body.email ? sql`lower(${users.email}) = lower(${body.email})` : sql`lower(${users.githubLogin}) = lower(${body.github_login})`)
      .limit(1);
    if (!user || !user.isActive) {
      throw new ApiError("UNPROCESSABLE", `no Stagely user with that ${body.email ? "email" : "GitHub login"}; they must sign in once first`);
    }
    try {
      const [[member]] = await db.batch([
        db.insert(teamMembers).values({ teamId: membership.teamId, userId: user.id, role: body.role }).returning(),
        auditInsert(db, auth, {
          action: "member.added",
          resourceType: "team_member",
          resourceId: user.id,
          teamId: membership.teamId,
          metadata: { role: body.role },
        }),
      ]);
      return c.json(toApiMember({ ...user, userId: user.id, role: member!.role, createdAt: member!.createdAt }), 201);
    } catch (error) {
      if (databaseErrorOf(error)?.constraint === "team_members_pkey") throw new ApiError("CONFLICT", "that user is already a member");
      throw error;
    }
  },
});
