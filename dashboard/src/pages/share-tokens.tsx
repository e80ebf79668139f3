import { useState } from "hono/jsx/dom";
import { api, type CreatedShareToken, type Role, type ShareToken } from "../api.ts";
import { ActionButton, Empty, ErrorNote, Field, Loading, LoadMore, StatusBadge, TableHead, useSubmit } from "../components.tsx";
import { ago, dateTime } from "../format.ts";
import { usePagedList } from "../hooks.ts";
import { can } from "../roles.ts";

function stateOf(token: ShareToken, now = Date.now()): "revoked" | "expired" | "active" {
  if (token.revoked_at) return "revoked";
  return new Date(token.expires_at).getTime() <= now ? "expired" : "active";
}

/**
 * A preview's share tokens: each opens this one preview for someone outside the team until it expires or is revoked.
 * Members create them (the token and its link are shown once) and revoke them; viewers see the list.
 */
export function ShareTokens({ environmentId, role, live }: { environmentId: string; role: Role; live: boolean }) {
  const list = usePagedList<ShareToken>(`/v1/environments/${environmentId}/share-tokens?limit=50`);
  const [created, setCreated] = useState<CreatedShareToken | null>(null);
  const member = can(role, "member");
  const create = useSubmit(async (data) => {
    setCreated(await api<CreatedShareToken>("POST", `/v1/environments/${environmentId}/share-tokens`, { name: data.get("name"), expires_in_hours: Number(data.get("expires_in_hours")) }));
    list.reload();
  });
  return (
    <div class="share-tokens">
      <h2>Share links</h2>
      <p class="muted">A share link opens this preview for someone outside the team, without signing in, until it expires or is revoked.</p>
      {created && (
        <div class="note note-ok" role="status">
          <p>
            Share link <strong>{created.name}</strong> created. Copy it now: it is shown only this once.
          </p>
          <p>
            <code class="secret-once" data-testid="new-share-link">
              {created.url}
            </code>{" "}
            <button type="button" onClick={() => void navigator.clipboard?.writeText(created.url)}>
              Copy link
            </button>{" "}
            <button type="button" onClick={() => setCreated(null)}>
              Done
            </button>
          </p>
          <p class="muted small">
            Or send the token as the <code>X-Stagely-Token</code> header: <code class="secret-once">{created.token}</code>
          </p>
        </div>
      )}
      {member && live && (
        <form class="inline-form" onSubmit={create.onSubmit} aria-label="Create a share link">
          <Field label="For whom">
            <input name="name" required maxLength={100} placeholder="QA review" autocomplete="off" />
          </Field>
          <Field label="Valid for">
            <select name="expires_in_hours">
              <option value="24">1 day</option>
              <option value="72" selected>
                3 days
              </option>
              <option value="168">1 week</option>
              <option value="720">30 days</option>
            </select>
          </Field>
          <button type="submit" class="primary" disabled={create.busy}>
            Create share link
          </button>
          <ErrorNote error={create.error} />
        </form>
      )}
      <ErrorNote error={list.error} />
      {!list.items ? (
        <Loading what="share links" />
      ) : list.items.length === 0 ? (
        <Empty>No share links.</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead columns={["For", "Token", "State", "Created"]} actions />
            <tbody>
              {list.items.map((token) => {
                const state = stateOf(token);
                return (
                  <tr data-share-token={token.id}>
                    <td>{token.name}</td>
                    <td>
                      <code>{token.token_hint}</code>
                    </td>
                    <td>
                      <StatusBadge status={state} />
                      <div class="muted small" title={dateTime(token.expires_at)}>
                        {state === "active" ? `expires ${ago(token.expires_at)}` : state === "revoked" ? ago(token.revoked_at) : ""}
                      </div>
                    </td>
                    <td>{ago(token.created_at)}</td>
                    <td>
                      {member && state === "active" && (
                        <ActionButton
                          label="Revoke"
                          danger
                          confirm={`Revoke the share link "${token.name}"? It stops working at once.`}
                          onAction={async () => {
                            await api("DELETE", `/v1/share-tokens/${token.id}`);
                            list.reload();
                          }}
                        />
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <LoadMore list={list} />
    </div>
  );
}
