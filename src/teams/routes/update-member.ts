import { and, eq, sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { roles, teamMembers, users } from "../../db/schema.ts";
import { defineRoute } from "../../lib/route.ts";
import { memberParams, memberSchema, toApiMember } from "../model.ts";
import { assertCanGrant, explainMemberChange, lockTeam, memberChangeAllowed } from "../owner-rules.ts";
import { memberColumns } from "./list-members.ts";
import { forgetCachedAuth } from "../../auth/auth-cache.ts";

export const updateMember = defineRoute({
  method: "patch",
  path: "/v1/teams/:team/members/:user",
  summary: "Change a member's role",
  tag: "teams",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: memberParams,
  body: z.object({ role: z.enum(roles) }).strict(),
  example: { role: "admin" },
  response: memberSchema,
  async handler(c, { params, body, team: caller }) {
    const auth = c.get("auth");
    assertCanGrant(caller, body.role);
    const db = dbOf(c);
    const allowed = memberChangeAllowed(caller, caller.teamId, params.user, body.role);
    const [, , updated, [member]] = await db.batch([
      lockTeam(db, caller.teamId),
      auditInsertWhere(
        db,
        auth,
        { action: "member.role_changed", resourceType: "team_member", resourceId: params.user, metadata: { role: body.role } },
        { from: sql`FROM ${teamMembers} WHERE ${allowed}`, teamId: sql`${teamMembers.teamId}`, projectId: sql`NULL` },
      ),
      db.update(teamMembers).set({ role: body.role }).where(allowed).returning({ userId: teamMembers.userId }),
      db
        .select(memberColumns)
        .from(teamMembers)
        .innerJoin(users, eq(users.id, teamMembers.userId))
        .where(and(eq(teamMembers.teamId, caller.teamId), eq(teamMembers.userId, params.user))),
    ]);
    if (updated.length === 0 || !member) throw await explainMemberChange(db, caller, params.user);
    forgetCachedAuth();
    return c.json(toApiMember(member));
  },
});
