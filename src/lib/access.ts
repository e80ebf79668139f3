import { sql, type SQL } from "drizzle-orm";
import type { Auth } from "../auth/middleware.ts";
import { atLeast, type Role } from "../auth/roles.ts";
import type { Db } from "../db/client.ts";
import { ApiError } from "./errors.ts";

/**
 * Why a conditional write matched no row, worked out only on that error path: the resource is not in any of
 * the caller's teams (404, whatever the truth), the caller's role is too low (403), or `conflict` applies (409, or
 * its own `code`).
 * `teamOf` selects the resource's team id by its id.
 */
export async function explainMiss(
  db: Db,
  auth: Auth,
  options: { what: string; id: string; teamOf: SQL; minRole: Role; conflict?: { when: SQL; message: string; code?: "CONFLICT" | "UNPROCESSABLE" } },
): Promise<ApiError> {
  const teamIds = auth.memberships.map((m) => m.teamId);
  if (teamIds.length === 0) return new ApiError("NOT_FOUND", `${options.what} ${options.id} not found`);
  const result = await db.execute<{ team_id: string; conflict: boolean }>(sql`
    SELECT owner.team_id, ${options.conflict?.when ?? sql`false`} AS conflict
      FROM (${options.teamOf}) AS owner(team_id)
     WHERE owner.team_id IN (${sql.join(teamIds.map((id) => sql`${id}`), sql`, `)})`);
  const row = result.rows[0];
  if (!row) return new ApiError("NOT_FOUND", `${options.what} ${options.id} not found`);
  const membership = auth.memberships.find((m) => m.teamId === row.team_id)!;
  if (!atLeast(membership.role, options.minRole)) {
    return new ApiError("FORBIDDEN", `this needs the ${options.minRole} role or higher in team ${membership.slug}; you are ${membership.role}`);
  }
  if (options.conflict && row.conflict) return new ApiError(options.conflict.code ?? "CONFLICT", options.conflict.message);
  return new ApiError("NOT_FOUND", `${options.what} ${options.id} not found`);
}
