import { api, type Invitation, type Me, type Member, type Role } from "../api.ts";
import { ActionButton, Empty, ErrorNote, Field, Loading, LoadMore, PageHeader, StatusBadge, TableHead, useSubmit } from "../components.tsx";
import { ago, dateTime } from "../format.ts";
import { usePagedList, useResource } from "../hooks.ts";
import type { TeamPageProps } from "../main.tsx";
import { can, roleAbilities, roles } from "../roles.ts";
import { invitee } from "./invitations.tsx";

/** Roles the caller may hand out: admins up to admin, owners any. */
const grantable = (caller: Role) => roles.filter((r) => r !== "owner" || caller === "owner");

export function Members({ team, role }: TeamPageProps) {
  const me = useResource<Me>("/v1/me");
  const members = usePagedList<Member>(`/v1/teams/${team}/members?limit=100`);
  const admin = can(role, "admin");
  // Admins manage everyone but owners; owners manage everyone.
  const manages = (member: Member) => admin && (member.role !== "owner" || role === "owner");
  return (
    <section>
      <PageHeader title="Members" />
      <ErrorNote error={members.error} />
      {!members.items ? (
        <Loading what="members" />
      ) : members.items.length === 0 ? (
        <Empty>No members.</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead columns={["Member", "Role", "Joined"]} actions />
            <tbody>
              {members.items.map((member) => (
                <tr>
                  <td>
                    {member.name ?? member.github_login ?? member.email}
                    <div class="muted small">{member.email}</div>
                  </td>
                  <td>
                    {manages(member) ? (
                      <select
                        aria-label={`Role of ${member.email}`}
                        onChange={async (event: Event) => {
                          const select = event.target as HTMLSelectElement;
                          try {
                            await api("PATCH", `/v1/teams/${team}/members/${member.user_id}`, { role: select.value });
                          } catch (failure) {
                            window.alert((failure as Error).message);
                          }
                          members.reload();
                        }}
                      >
                        {grantable(role).map((r) => (
                          <option value={r} selected={r === member.role}>
                            {r}
                          </option>
                        ))}
                      </select>
                    ) : (
                      member.role
                    )}
                  </td>
                  <td>{ago(member.joined_at)}</td>
                  <td>
                    {(manages(member) || member.user_id === me.data?.user.id) && (
                      <ActionButton
                        label={member.user_id === me.data?.user.id ? "Leave" : "Remove"}
                        danger
                        confirm={member.user_id === me.data?.user.id ? `Leave the team ${team}?` : `Remove ${member.email} from the team?`}
                        onAction={async () => {
                          await api("DELETE", `/v1/teams/${team}/members/${member.user_id}`);
                          if (member.user_id === me.data?.user.id) location.assign("/");
                          else members.reload();
                        }}
                      />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {admin && <Invitations team={team} role={role} />}
      <h2>What each role may do</h2>
      <dl class="roles">
        {roles.map((r) => (
          <>
            <dt>{r}</dt>
            <dd>{roleAbilities[r]}</dd>
          </>
        ))}
      </dl>
      <p class="muted small">Your role in this team: {role}.</p>
    </section>
  );
}

/** An admin's view of the team's invitations: invite by GitHub login or email, see each one's fate, revoke open ones. */
function Invitations({ team, role }: { team: string; role: Role }) {
  const list = usePagedList<Invitation>(`/v1/teams/${team}/invitations?limit=50`);
  const invite = useSubmit(async (data) => {
    const who = String(data.get("who") ?? "").trim().replace(/^@/, "");
    await api("POST", `/v1/teams/${team}/invitations`, {
      ...(who.includes("@") ? { email: who } : { github_login: who }),
      role: data.get("role"),
      expires_in_days: Number(data.get("expires_in_days")),
    });
    list.reload();
  });
  return (
    <>
      <h2>Invitations</h2>
      <p class="muted">Invited people join when they accept, after signing in with the GitHub account or verified email you name here.</p>
      <form class="inline-form" onSubmit={invite.onSubmit} aria-label="Invite someone">
        <Field label="GitHub login or email">
          <input name="who" required maxLength={254} autocomplete="off" spellcheck={false} placeholder="octocat or dev@example.com" />
        </Field>
        <Field label="Role">
          <select name="role">
            {grantable(role).map((r) => (
              <option value={r} selected={r === "member"}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Valid for (days)">
          <input name="expires_in_days" type="number" min={1} max={30} value="7" required />
        </Field>
        <button type="submit" class="primary" disabled={invite.busy}>
          Invite
        </button>
        <ErrorNote error={invite.error} />
      </form>
      <ErrorNote error={list.error} />
      {!list.items ? (
        <Loading what="invitations" />
      ) : list.items.length === 0 ? (
        <Empty>No invitations yet.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="invitations">
            <TableHead columns={["Invited", "Role", "Status", "Sent"]} actions />
            <tbody>
              {list.items.map((invitation) => (
                <tr data-invitation={invitation.id}>
                  <td>
                    {invitee(invitation)}
                    {invitation.invited_by && <div class="muted small">by {invitation.invited_by.name ?? invitation.invited_by.github_login}</div>}
                  </td>
                  <td>{invitation.role}</td>
                  <td>
                    <StatusBadge status={invitation.status} />
                    <div class="muted small" title={dateTime(invitation.answered_at ?? invitation.expires_at)}>
                      {invitation.status === "pending" ? `expires ${ago(invitation.expires_at)}` : invitation.answered_at ? ago(invitation.answered_at) : ""}
                    </div>
                  </td>
                  <td>{ago(invitation.created_at)}</td>
                  <td>
                    {invitation.status === "pending" && (invitation.role !== "owner" || role === "owner") && (
                      <ActionButton
                        label="Revoke"
                        danger
                        confirm={`Revoke the invitation of ${invitee(invitation)}?`}
                        onAction={async () => {
                          await api("DELETE", `/v1/teams/${team}/invitations/${invitation.id}`);
                          list.reload();
                        }}
                      />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <LoadMore list={list} />
    </>
  );
}
