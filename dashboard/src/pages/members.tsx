import { api, type Me, type Member, type Role } from "../api.ts";
import { ActionButton, Empty, ErrorNote, Field, Loading, PageHeader, useSubmit } from "../components.tsx";
import { ago } from "../format.ts";
import { usePagedList, useResource } from "../hooks.ts";
import type { TeamPageProps } from "../main.tsx";
import { can, roleAbilities, roles } from "../roles.ts";

/** Roles the caller may hand out: admins up to admin, owners any. */
const grantable = (caller: Role) => roles.filter((r) => r !== "owner" || caller === "owner");

export function Members({ team, role }: TeamPageProps) {
  const me = useResource<Me>("/v1/me");
  const members = usePagedList<Member>(`/v1/teams/${team}/members?limit=100`);
  const admin = can(role, "admin");
  const add = useSubmit(async (data) => {
    await api("POST", `/v1/teams/${team}/members`, { email: data.get("email"), role: data.get("role") });
    members.reload();
  });
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
            <thead>
              <tr>
                <th>Member</th>
                <th>Role</th>
                <th>Joined</th>
                <th>
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
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
      {admin && (
        <form class="inline-form" onSubmit={add.onSubmit}>
          <h2>Add a member</h2>
          <p class="muted">They must have signed in to Stagely once.</p>
          <Field label="Email">
            <input name="email" type="email" required autocomplete="off" />
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
          <button type="submit" class="primary" disabled={add.busy}>
            Add member
          </button>
          <ErrorNote error={add.error} />
        </form>
      )}
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
