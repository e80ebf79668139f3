import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { countRoundTrips, db, waitForQuiet } from "../../test/db.ts";
import { call, seedUser, seedWorld } from "../../test/harness.ts";
import { auditLogs, teamInvitations, teamMembers } from "../db/schema.ts";

type World = Awaited<ReturnType<typeof seedWorld>>;

const invite = (w: World, body: Record<string, unknown>, token = w.admin.token) => call("POST", `/v1/teams/${w.team.slug}/invitations`, { token, body });
const membersOf = async (teamId: string) => (await db.select().from(teamMembers).where(eq(teamMembers.teamId, teamId))).map((m) => m.userId).sort();
const actionsOf = async (teamId: string) => (await db.select().from(auditLogs).where(eq(auditLogs.teamId, teamId))).map((a) => a.action).sort();

describe("invitations", () => {
  it("an admin invites a GitHub login; the invitee sees it once signed in, accepts, and joins with that role", async () => {
    const w = await seedWorld();
    const invitee = await seedUser();
    const created = await invite(w, { github_login: invitee.githubLogin.toUpperCase(), role: "viewer" });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      team: { id: w.team.id, slug: w.team.slug },
      github_login: invitee.githubLogin.toUpperCase(),
      email: null,
      role: "viewer",
      status: "pending",
      invited_by: { id: w.admin.id },
      answered_at: null,
    });
    expect(new Date(created.body.expires_at).getTime()).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    expect(await membersOf(w.team.id)).not.toContain(invitee.id);

    const mine = await call("GET", "/v1/invitations", { token: invitee.token });
    expect(mine.body.data).toEqual([created.body]);
    const accepted = await call("POST", `/v1/invitations/${created.body.id}/accept`, { token: invitee.token });
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body).toMatchObject({ id: created.body.id, status: "accepted", answered_at: expect.any(String) });
    const me = await call("GET", "/v1/me", { token: invitee.token });
    expect(me.body.teams).toEqual([{ id: w.team.id, slug: w.team.slug, role: "viewer" }]);
    expect((await call("GET", "/v1/invitations", { token: invitee.token })).body.data).toEqual([]);
    expect(await actionsOf(w.team.id)).toEqual(["invitation.accepted", "invitation.created"]);

    const again = await call("POST", `/v1/invitations/${created.body.id}/accept`, { token: invitee.token });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/already accepted/);
  });

  it("answers an invitation the same whether or not the person has an account, and adds nobody", async () => {
    const w = await seedWorld();
    const existing = await seedUser({ emailVerified: true });
    const members = await membersOf(w.team.id);
    const shape = (body: Record<string, unknown>) => ({ ...body, id: "", email: "", created_at: "", expires_at: "" });
    await call("GET", "/v1/me", { token: w.admin.token });
    await waitForQuiet();
    let known!: Awaited<ReturnType<typeof invite>>;
    let unknown!: Awaited<ReturnType<typeof invite>>;
    const knownTrips = await countRoundTrips(async () => (known = await invite(w, { email: existing.email })));
    const unknownTrips = await countRoundTrips(async () => (unknown = await invite(w, { email: `nobody-${w.team.id}@example.test` })));
    expect([known.status, unknown.status]).toEqual([201, 201]);
    expect(shape(known.body)).toEqual(shape(unknown.body));
    expect(Object.keys(known.body).sort()).toEqual(Object.keys(unknown.body).sort());
    expect(knownTrips).toBe(unknownTrips);
    expect(await membersOf(w.team.id)).toEqual(members);
  });

  it("matches an email only once it is verified, case-insensitively", async () => {
    const w = await seedWorld();
    const invitee = await seedUser({ email: `Mixed-${w.team.id}@Example.test` });
    const created = await invite(w, { email: invitee.email.toLowerCase(), role: "member" });
    expect((await call("GET", "/v1/invitations", { token: invitee.token })).body.data).toEqual([]);
    expect((await call("POST", `/v1/invitations/${created.body.id}/accept`, { token: invitee.token })).status).toBe(404);

    const verified = await seedUser({ email: `Verified-${w.team.id}@Example.test`, emailVerified: true });
    const forVerified = await invite(w, { email: verified.email.toUpperCase() });
    expect((await call("GET", "/v1/invitations", { token: verified.token })).body.data.map((i: { id: string }) => i.id)).toEqual([forVerified.body.id]);
    expect((await call("POST", `/v1/invitations/${forVerified.body.id}/accept`, { token: verified.token })).status).toBe(200);
    expect(await membersOf(w.team.id)).toContain(verified.id);
  });

  it("is invisible to everyone else: another user can neither list, accept nor decline it", async () => {
    const w = await seedWorld();
    const invitee = await seedUser();
    const created = await invite(w, { github_login: invitee.githubLogin });
    for (const stranger of [w.outsider, w.member]) {
      expect((await call("GET", "/v1/invitations", { token: stranger.token })).body.data).toEqual([]);
      for (const answer of ["accept", "decline"]) {
        const response = await call("POST", `/v1/invitations/${created.body.id}/${answer}`, { token: stranger.token });
        expect(response.status, `${answer}: ${response.text}`).toBe(404);
      }
    }
    const [row] = await db.select().from(teamInvitations).where(eq(teamInvitations.id, created.body.id));
    expect(row).toMatchObject({ acceptedAt: null, declinedAt: null, revokedAt: null });
    expect(await membersOf(w.team.id)).not.toContain(w.outsider.id);
  });

  it("can be declined by the invitee, and then not accepted", async () => {
    const w = await seedWorld();
    const invitee = await seedUser();
    const created = await invite(w, { github_login: invitee.githubLogin });
    const declined = await call("POST", `/v1/invitations/${created.body.id}/decline`, { token: invitee.token });
    expect(declined.status, declined.text).toBe(200);
    expect(declined.body.status).toBe("declined");
    const accept = await call("POST", `/v1/invitations/${created.body.id}/accept`, { token: invitee.token });
    expect(accept.status).toBe(409);
    expect(accept.body.error.message).toMatch(/already declined/);
    expect(await membersOf(w.team.id)).not.toContain(invitee.id);
    const listed = await call("GET", `/v1/teams/${w.team.slug}/invitations`, { token: w.admin.token });
    expect(listed.body.data.map((i: { status: string }) => i.status)).toEqual(["declined"]);
    expect(await actionsOf(w.team.id)).toEqual(["invitation.created", "invitation.declined"]);
  });

  it("can be revoked by an admin; owner invitations are for owners to make and revoke", async () => {
    const w = await seedWorld();
    const invitee = await seedUser();
    const created = await invite(w, { github_login: invitee.githubLogin });
    expect((await call("DELETE", `/v1/teams/${w.team.slug}/invitations/${created.body.id}`, { token: w.admin.token })).status).toBe(204);
    expect((await call("GET", "/v1/invitations", { token: invitee.token })).body.data).toEqual([]);
    expect((await call("POST", `/v1/invitations/${created.body.id}/accept`, { token: invitee.token })).body.error.message).toMatch(/already revoked/);
    expect((await call("DELETE", `/v1/teams/${w.team.slug}/invitations/${created.body.id}`, { token: w.admin.token })).status).toBe(409);
    expect((await call("DELETE", `/v1/teams/${w.otherTeam.slug}/invitations/${created.body.id}`, { token: w.outsider.token })).status).toBe(404);

    const asAdmin = await invite(w, { github_login: invitee.githubLogin, role: "owner" });
    expect(asAdmin.status).toBe(403);
    const asOwner = await invite(w, { github_login: invitee.githubLogin, role: "owner" }, w.owner.token);
    expect(asOwner.status).toBe(201);
    expect((await call("DELETE", `/v1/teams/${w.team.slug}/invitations/${asOwner.body.id}`, { token: w.admin.token })).status).toBe(403);
    const replaceOwnerInvite = await invite(w, { github_login: invitee.githubLogin, role: "viewer" });
    expect(replaceOwnerInvite.status).toBe(409);
    expect((await call("DELETE", `/v1/teams/${w.team.slug}/invitations/${asOwner.body.id}`, { token: w.owner.token })).status).toBe(204);
    expect(await actionsOf(w.team.id)).toEqual(["invitation.created", "invitation.created", "invitation.revoked", "invitation.revoked"]);
  });

  it("inviting the same person again replaces their open invitation", async () => {
    const w = await seedWorld();
    const invitee = await seedUser();
    const first = await invite(w, { github_login: invitee.githubLogin, role: "viewer" });
    const second = await invite(w, { github_login: invitee.githubLogin.toUpperCase(), role: "member" });
    expect(second.status).toBe(201);
    const mine = await call("GET", "/v1/invitations", { token: invitee.token });
    expect(mine.body.data.map((i: { id: string; role: string }) => [i.id, i.role])).toEqual([[second.body.id, "member"]]);
    const listed = await call("GET", `/v1/teams/${w.team.slug}/invitations`, { token: w.admin.token });
    expect(listed.body.data.map((i: { id: string; status: string }) => [i.id, i.status])).toEqual([
      [second.body.id, "pending"],
      [first.body.id, "revoked"],
    ]);
  });

  it("cannot be accepted once expired, or by someone already in the team", async () => {
    const w = await seedWorld();
    const invitee = await seedUser();
    const created = await invite(w, { github_login: invitee.githubLogin });
    await db.update(teamInvitations).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(teamInvitations.id, created.body.id));
    expect((await call("GET", "/v1/invitations", { token: invitee.token })).body.data).toEqual([]);
    const late = await call("POST", `/v1/invitations/${created.body.id}/accept`, { token: invitee.token });
    expect(late.status).toBe(409);
    expect(late.body.error.message).toMatch(/expired; ask an admin/);

    const forMember = await invite(w, { github_login: w.member.githubLogin, role: "admin" });
    const member = await call("POST", `/v1/invitations/${forMember.body.id}/accept`, { token: w.member.token });
    expect(member.status).toBe(409);
    expect(member.body.error.message).toMatch(/already a member/);
    const [row] = await db.select().from(teamMembers).where(and(eq(teamMembers.teamId, w.team.id), eq(teamMembers.userId, w.member.id)));
    expect(row!.role).toBe("member");
  });

  it("refuses bad input with a 400 and writes nothing", async () => {
    const w = await seedWorld();
    const before = await actionsOf(w.team.id);
    for (const body of [
      {},
      { email: "a@example.test", github_login: "octocat" },
      { email: "not an email" },
      { github_login: "no spaces allowed" },
      { github_login: "octocat", role: "superuser" },
      { github_login: "octocat", expires_in_days: 0 },
      { github_login: "octocat", extra: true },
    ]) {
      const response = await invite(w, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
    expect(await actionsOf(w.team.id)).toEqual(before);
    expect(await db.select().from(teamInvitations).where(eq(teamInvitations.teamId, w.team.id))).toEqual([]);
    expect((await call("POST", "/v1/invitations/not-an-id/accept", { token: w.member.token })).status).toBe(400);
  });

  it("replaces adding members by email: that route no longer exists", async () => {
    const w = await seedWorld();
    const response = await call("POST", `/v1/teams/${w.team.slug}/members`, { token: w.owner.token, body: { email: w.outsider.email } });
    expect(response.status).toBe(404);
    expect(await membersOf(w.team.id)).not.toContain(w.outsider.id);
  });
});
