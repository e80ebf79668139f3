import { sql, type SQL } from "drizzle-orm";
import type { Membership } from "../auth/middleware.ts";
import type { Role } from "../auth/roles.ts";
import type { Db } from "../db/client.ts";
import { teamMembers, teams } from "../db/schema.ts";
import { ApiError } from "../lib/errors.ts";

/**
 * The rules every membership change obeys, as SQL so they hold inside the write itself: only owners touch owners,
 * and a team always keeps at least one owner. `lockTeam` goes first in the batch so concurrent changes to the
 * same team's members are serialized (two owners demoting each other cannot leave none).
 */
export function lockTeam(db: Db, teamId: string) {
  return db.execute(sql`SELECT id FROM ${teams} WHERE id = ${teamId} FOR UPDATE`);
}

export function memberChangeAllowed(caller: Membership, teamId: string, userId: string, newRole: Role | null): SQL {
  const callerIsOwner = caller.role === "owner";
  const keepsAnOwner =
    newRole === "owner"
      ? sql`true`
      : sql`(${teamMembers.role} <> 'owner' OR (SELECT count(*) FROM ${teamMembers} o WHERE o.team_id = ${teamId} AND o.role = 'owner') > 1)`;
  return sql`${teamMembers.teamId} = ${teamId} AND ${teamMembers.userId} = ${userId}
    AND (${callerIsOwner} OR ${teamMembers.role} <> 'owner') AND ${keepsAnOwner}`;
}

/** Why a membership change matched nothing (read only on that error path). */
export async function explainMemberChange(db: Db, caller: Membership, userId: string): Promise<ApiError> {
  const result = await db.execute<{ role: Role; owners: number }>(sql`
    SELECT role, (SELECT count(*)::int FROM ${teamMembers} WHERE team_id = ${caller.teamId} AND role = 'owner') AS owners
      FROM ${teamMembers} WHERE team_id = ${caller.teamId} AND user_id = ${userId}`);
  const target = result.rows[0];
  if (!target) return new ApiError("NOT_FOUND", `user ${userId} is not a member of team ${caller.slug}`);
  if (target.role === "owner" && caller.role !== "owner") return new ApiError("FORBIDDEN", "only an owner can change or remove an owner");
  if (target.role === "owner" && target.owners <= 1) {
    return new ApiError("CONFLICT", "a team must keep at least one owner; make someone else owner first");
  }
  return new ApiError("CONFLICT", "the membership changed meanwhile; try again");
}

export function assertCanGrant(caller: Membership, role: Role): void {
  if (role === "owner" && caller.role !== "owner") throw new ApiError("FORBIDDEN", "only an owner can make someone an owner");
}

