import { ApiError } from "../lib/errors.ts";
import { roles } from "../db/schema.ts";
import type { Auth, Membership } from "./middleware.ts";

export type Role = (typeof roles)[number];

const rank: Record<Role, number> = { viewer: 1, member: 2, admin: 3, owner: 4 };

export function atLeast(role: Role, minimum: Role): boolean {
  return rank[role] >= rank[minimum];
}

/** The caller's membership in a team named by id (`team_...`) or slug; undefined when not a member. */
export function findMembership(auth: Auth, teamRef: string): Membership | undefined {
  return auth.memberships.find((m) => m.teamId === teamRef || m.slug === teamRef);
}

/** The team, if the caller belongs to it with at least `minimum`: not a member is 404 (never reveal), too low 403. */
export function requireTeamRole(auth: Auth, teamRef: string, minimum: Role): Membership {
  const membership = findMembership(auth, teamRef);
  if (!membership) throw new ApiError("NOT_FOUND", `team ${teamRef} not found`);
  requireRole(membership, minimum);
  return membership;
}

export function requireRole(membership: Membership, minimum: Role): void {
  if (!atLeast(membership.role, minimum)) {
    throw new ApiError("FORBIDDEN", `this needs the ${minimum} role or higher in team ${membership.slug}; you are ${membership.role}`);
  }
}

/** Ids of the teams where the caller has at least `minimum`, for scoping queries. */
export function teamIdsWithRole(auth: Auth, minimum: Role): string[] {
  return auth.memberships.filter((m) => atLeast(m.role, minimum)).map((m) => m.teamId);
}

/** For a resource found in one of the caller's teams: its membership there, with at least `minimum`. */
export function requireRoleInTeam(auth: Auth, teamId: string, minimum: Role): Membership {
  const membership = auth.memberships.find((m) => m.teamId === teamId);
  if (!membership) throw new ApiError("NOT_FOUND", "not found");
  requireRole(membership, minimum);
  return membership;
}
