import { and, eq, sql } from "drizzle-orm";
import * as z from "zod";
import { dbOf } from "../../app-env.ts";
import { auditInsert } from "../../audit/record.ts";
import { databaseErrorOf } from "../../db/client.ts";
import { roles, teamInvitations } from "../../db/schema.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { DEFAULT_INVITATION_DAYS, invitationOpen, invitationSchema, selectInvitations, toApiInvitation } from "../invitations.ts";
import { assertCanGrant } from "../owner-rules.ts";

export const createInvitation = defineRoute({
  method: "post",
  path: "/v1/teams/:team/invitations",
  summary:
    "Invite someone by GitHub login or email; they join only if they accept after signing in. The answer is the same whether or not they have an account; inviting the same person again replaces their open invitation",
  tag: "teams",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamParams,
  body: z
    .object({
      email: z.email().max(254).optional(),
      github_login: z.string().regex(/^[A-Za-z0-9-]{1,39}$/, "must be a GitHub login").optional(),
      role: z.enum(roles).default("member").describe("only an owner may invite an owner"),
      expires_in_days: z.number().int().min(1).max(30).default(DEFAULT_INVITATION_DAYS),
    })
    .strict()
    .refine((b) => (b.email === undefined) !== (b.github_login === undefined), "send exactly one of email and github_login"),
  example: { github_login: "octocat", role: "member" },
  response: invitationSchema,
  status: 201,
  async handler(c, { body, team: caller }) {
    const auth = c.get("auth");
    assertCanGrant(caller, body.role);
    const db = dbOf(c);
    const id = newId("invitation");
    // Never looks the person up: whether they have an account must not change the answer.
    const samePerson = body.email
      ? sql`lower(${teamInvitations.email}) = lower(${body.email})`
      : sql`lower(${teamInvitations.githubLogin}) = lower(${body.github_login})`;
    const replaceable = and(eq(teamInvitations.teamId, caller.teamId), samePerson, invitationOpen, caller.role === "owner" ? undefined : sql`${teamInvitations.role} <> 'owner'`);
    try {
      const [, , , [invitation]] = await db.batch([
        auditInsert(db, auth, {
          action: "invitation.created",
          resourceType: "team_invitation",
          resourceId: id,
          teamId: caller.teamId,
          metadata: { email: body.email ?? null, github_login: body.github_login ?? null, role: body.role },
        }),
        db.update(teamInvitations).set({ revokedAt: sql`now()` }).where(replaceable),
        db.insert(teamInvitations).values({
          id,
          teamId: caller.teamId,
          email: body.email ?? null,
          githubLogin: body.github_login ?? null,
          role: body.role,
          invitedBy: auth.user.id,
          expiresAt: new Date(Date.now() + body.expires_in_days * 86_400_000),
        }),
        selectInvitations(db).where(eq(teamInvitations.id, id)),
      ]);
      return c.json(toApiInvitation(invitation!), 201);
    } catch (error) {
      const constraint = databaseErrorOf(error)?.constraint;
      if (constraint === "team_invitations_open_email_key" || constraint === "team_invitations_open_github_login_key") {
        throw new ApiError("CONFLICT", "this person has an open invitation to the owner role; only an owner can replace it (or revoke it)");
      }
      throw error;
    }
  },
});
