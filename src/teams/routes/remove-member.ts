import { sql } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { requireRole } from "../../auth/roles.ts";
import { teamMembers } from "../../db/schema.ts";
import { defineRoute } from "../../lib/route.ts";
import { memberParams } from "../model.ts";
import { explainMemberChange, lockTeam, memberChangeAllowed } from "../owner-rules.ts";
import { forgetCachedAuth } from "../../auth/auth-cache.ts";

export const removeMember = defineRoute({
  method: "delete",
  path: "/v1/teams/:team/members/:user",
  summary: "Remove a member from the team (an admin's right; any member may remove themselves)",
  tag: "teams",
  // The least role that can succeed: leaving. Removing someone else needs admin, checked below.
  access: { kind: "team", minRole: "viewer", resource: "team" },
  params: memberParams,
  status: 204,
  async handler(c, { params, team: caller }) {
    const auth = c.get("auth");
    const leaving = params.user === auth.user.id;
    if (!leaving) requireRole(caller, "admin");
    const db = dbOf(c);
    // Leaving yourself is allowed whatever your role, except as the last owner.
    const allowed = memberChangeAllowed(leaving ? { ...caller, role: "owner" } : caller, caller.teamId, params.user, null);
    const [, , removed] = await db.batch([
      lockTeam(db, caller.teamId),
      auditInsertWhere(
        db,
        auth,
        { action: leaving ? "member.left" : "member.removed", resourceType: "team_member", resourceId: params.user },
        { from: sql`FROM ${teamMembers} WHERE ${allowed}`, teamId: sql`${teamMembers.teamId}`, projectId: sql`NULL` },
      ),
      db.delete(teamMembers).where(allowed).returning({ userId: teamMembers.userId }),
    ]);
    if (removed.length === 0) throw await explainMemberChange(db, caller, params.user);
    forgetCachedAuth();
    return c.body(null, 204);
  },
});
