import { eq, sql, type SQL } from "drizzle-orm";
import * as z from "zod";
import type { Db } from "../db/client.ts";
import { roles, teamInvitations, teamMembers, teams, users } from "../db/schema.ts";
import { ApiError } from "../lib/errors.ts";
import { idOf, iso, teamRef, timestamp } from "../lib/schemas.ts";

/** Invitations live this long unless the admin chooses otherwise. */
export const DEFAULT_INVITATION_DAYS = 7;

export const invitationParams = z.object({ id: idOf("inv") });
export const teamInvitationParams = z.object({ team: teamRef, invitation: idOf("inv") });

export const invitationStatuses = ["pending", "accepted", "declined", "revoked", "expired"] as const;

export const invitationSchema = z.object({
  id: z.string(),
  team: z.object({ id: z.string(), slug: z.string(), name: z.string() }),
  email: z.string().nullable().describe("whom it is for: exactly one of email and github_login"),
  github_login: z.string().nullable(),
  role: z.enum(roles),
  status: z.enum(invitationStatuses),
  invited_by: z.object({ id: z.string(), name: z.string().nullable(), github_login: z.string().nullable() }).nullable(),
  expires_at: timestamp,
  answered_at: timestamp.nullable().describe("when it was accepted, declined or revoked"),
  created_at: timestamp,
});

/** Not accepted, declined or revoked. */
export const invitationOpen = sql`${teamInvitations.acceptedAt} IS NULL AND ${teamInvitations.declinedAt} IS NULL AND ${teamInvitations.revokedAt} IS NULL`;

/** Open and not expired: the invitee can still answer it. */
export const invitationPending = sql`${invitationOpen} AND ${teamInvitations.expiresAt} > now()`;

/**
 * The invitation is addressed to this user: to their email once verified (GitHub sign-in verifies it), or to their
 * GitHub login (set only by GitHub sign-in). Case-insensitive, like both.
 */
export function addressedTo(userId: string): SQL {
  return sql`EXISTS (SELECT 1 FROM ${users} u WHERE u.id = ${userId} AND u.is_active AND (
    (${teamInvitations.email} IS NOT NULL AND u.email_verified AND lower(u.email) = lower(${teamInvitations.email}))
    OR (${teamInvitations.githubLogin} IS NOT NULL AND lower(u.github_login) = lower(${teamInvitations.githubLogin}))))`;
}

/** The invitation's team still exists (it is soft-deleted). */
export const invitationTeamLive = sql`EXISTS (SELECT 1 FROM ${teams} t WHERE t.id = ${teamInvitations.teamId} AND t.deleted_at IS NULL)`;

/** Invitations with their team and inviter, as the API shows them; `userId` adds whether that user is a member. */
export function selectInvitations(db: Db, userId: string | null = null) {
  return db
    .select({
      id: teamInvitations.id,
      teamId: teamInvitations.teamId,
      teamSlug: teams.slug,
      teamName: teams.name,
      teamDeleted: sql<boolean>`${teams.deletedAt} IS NOT NULL`,
      email: teamInvitations.email,
      githubLogin: teamInvitations.githubLogin,
      role: teamInvitations.role,
      invitedBy: teamInvitations.invitedBy,
      inviterName: users.name,
      inviterLogin: users.githubLogin,
      expiresAt: teamInvitations.expiresAt,
      acceptedAt: teamInvitations.acceptedAt,
      declinedAt: teamInvitations.declinedAt,
      revokedAt: teamInvitations.revokedAt,
      createdAt: teamInvitations.createdAt,
      isMember: sql<boolean>`EXISTS (SELECT 1 FROM ${teamMembers} m WHERE m.team_id = ${teamInvitations.teamId} AND m.user_id = ${userId})`,
    })
    .from(teamInvitations)
    .innerJoin(teams, eq(teams.id, teamInvitations.teamId))
    .leftJoin(users, eq(users.id, teamInvitations.invitedBy));
}

export type InvitationRow = Awaited<ReturnType<ReturnType<typeof selectInvitations>["execute"]>>[number];

export function statusOf(row: Pick<InvitationRow, "acceptedAt" | "declinedAt" | "revokedAt" | "expiresAt">): (typeof invitationStatuses)[number] {
  if (row.acceptedAt) return "accepted";
  if (row.declinedAt) return "declined";
  if (row.revokedAt) return "revoked";
  return row.expiresAt.getTime() <= Date.now() ? "expired" : "pending";
}

export function toApiInvitation(row: InvitationRow): z.infer<typeof invitationSchema> {
  return {
    id: row.id,
    team: { id: row.teamId, slug: row.teamSlug, name: row.teamName },
    email: row.email,
    github_login: row.githubLogin,
    role: row.role,
    status: statusOf(row),
    invited_by: row.invitedBy ? { id: row.invitedBy, name: row.inviterName, github_login: row.inviterLogin } : null,
    expires_at: iso(row.expiresAt)!,
    answered_at: iso(row.acceptedAt ?? row.declinedAt ?? row.revokedAt),
    created_at: iso(row.createdAt)!,
  };
}

/**
 * Why the invitee's answer changed nothing, from the invitation as they can see it (undefined: not theirs, or
 * gone). Never says whether an invitation addressed to someone else exists.
 */
export function explainAnswer(id: string, row: InvitationRow | undefined): ApiError {
  if (!row || row.teamDeleted) return new ApiError("NOT_FOUND", `invitation ${id} not found`);
  const status = statusOf(row);
  if (status === "expired") return new ApiError("CONFLICT", `this invitation expired; ask an admin of team ${row.teamSlug} for a new one`);
  if (status !== "pending") return new ApiError("CONFLICT", `this invitation was already ${status}`);
  if (row.isMember) return new ApiError("CONFLICT", `you are already a member of team ${row.teamSlug}`);
  return new ApiError("CONFLICT", "the invitation changed meanwhile; try again");
}
