import { api, type Invitation, type Page } from "../api.ts";
import { ActionButton, Empty, ErrorNote, Loading, PageHeader } from "../components.tsx";
import { ago } from "../format.ts";
import { useResource } from "../hooks.ts";

/** Who an invitation is for, as the inviter typed it. */
export function invitee(invitation: Invitation): string {
  return invitation.github_login ? `@${invitation.github_login}` : (invitation.email ?? "");
}

function inviter(invitation: Invitation): string {
  const by = invitation.invited_by;
  return by ? (by.name ?? (by.github_login ? `@${by.github_login}` : "a team admin")) : "a former member";
}

/** The caller's own pending invitations (to their GitHub login or verified email), to accept or decline. */
export function MyInvitations() {
  const list = useResource<Page<Invitation>>("/v1/invitations?limit=100");
  return (
    <section>
      <PageHeader title="Invitations" />
      <ErrorNote error={list.error} />
      {!list.data ? (
        <Loading what="your invitations" />
      ) : list.data.data.length === 0 ? (
        <Empty>No invitations are waiting for you.</Empty>
      ) : (
        <ul class="cards">
          {list.data.data.map((invitation) => (
            <li class="card" data-invitation={invitation.id}>
              <h2>{invitation.team.name}</h2>
              <p>
                {inviter(invitation)} invites you as <strong>{invitation.role}</strong>.
              </p>
              <p class="muted small">Expires {ago(invitation.expires_at)}.</p>
              <div class="actions">
                <ActionButton
                  label="Accept"
                  busyLabel="Joining…"
                  onAction={async () => {
                    await api("POST", `/v1/invitations/${invitation.id}/accept`);
                    // The new membership is part of the session's view of the user: load the app again.
                    location.assign(`/t/${invitation.team.slug}/environments`);
                  }}
                />
                <ActionButton
                  label="Decline"
                  danger
                  confirm={`Decline the invitation to ${invitation.team.name}?`}
                  onAction={async () => {
                    await api("POST", `/v1/invitations/${invitation.id}/decline`);
                    // Loaded again, so the header's count of waiting invitations is right too.
                    location.reload();
                  }}
                />
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
