import type { Role } from "./api.ts";

export const roles: Role[] = ["viewer", "member", "admin", "owner"];

const rank: Record<Role, number> = { viewer: 1, member: 2, admin: 3, owner: 4 };

/** Whether `role` may do what needs `minimum`. The API decides anyway; the dashboard only leaves out what it would refuse. */
export function can(role: Role, minimum: Role): boolean {
  return rank[role] >= rank[minimum];
}

/** What each role adds to the one below it (README.md, "Roles per team"). */
export const roleAbilities: Record<Role, string> = {
  viewer: "sees everything in the team except secret values (nobody can read those back)",
  member: "also creates, rebuilds and deletes preview environments, cancels runs, and creates and revokes share links",
  admin: "also manages projects, secrets, cloud providers, GitHub App installations, invitations and members (not owners) and team settings, and reads the audit log",
  owner: "also deletes the team and manages owners",
};
