import { useState } from "hono/jsx/dom";
import { api, type ApiToken } from "../api.ts";
import { ActionButton, Empty, ErrorNote, Field, Loading, LoadMore, PageHeader, TableHead, useSubmit } from "../components.tsx";
import { ago, dateTime } from "../format.ts";
import { usePagedList } from "../hooks.ts";

/** Personal API tokens for the CLI and CI: created (the value shown once), listed by hint, revoked. */
export function Tokens() {
  const list = usePagedList<ApiToken>("/v1/tokens");
  const [created, setCreated] = useState<(ApiToken & { token: string }) | null>(null);
  const create = useSubmit(async (data) => {
    const days = String(data.get("expires_in_days"));
    setCreated(await api("POST", "/v1/tokens", { name: data.get("name"), expires_in_days: days === "never" ? null : Number(days) }));
    list.reload();
  });
  return (
    <section>
      <PageHeader title="API tokens" />
      <p class="muted">Tokens act as you in every team you belong to. Send them as <code>Authorization: Bearer …</code>.</p>
      {created && (
        <div class="note note-ok" role="status">
          <p>
            Token <strong>{created.name}</strong> created. Copy it now: it is shown only this once.
          </p>
          <p>
            <code class="secret-once" data-testid="new-token">
              {created.token}
            </code>{" "}
            <button type="button" onClick={() => void navigator.clipboard?.writeText(created.token)}>
              Copy
            </button>{" "}
            <button type="button" onClick={() => setCreated(null)}>
              Done
            </button>
          </p>
        </div>
      )}
      <form class="inline-form" onSubmit={create.onSubmit}>
        <Field label="Name">
          <input name="name" required maxLength={100} placeholder="ci" />
        </Field>
        <Field label="Expires">
          <select name="expires_in_days">
            <option value="30">in 30 days</option>
            <option value="90" selected>
              in 90 days
            </option>
            <option value="366">in a year</option>
            <option value="never">never</option>
          </select>
        </Field>
        <button type="submit" class="primary" disabled={create.busy}>
          Create token
        </button>
        <ErrorNote error={create.error} />
      </form>
      <ErrorNote error={list.error} />
      {!list.items ? (
        <Loading what="tokens" />
      ) : list.items.length === 0 ? (
        <Empty>No API tokens yet.</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead columns={["Name", "Token", "Last used", "Expires"]} actions />
            <tbody>
              {list.items.map((token) => (
                <tr>
                  <td>{token.name}</td>
                  <td>
                    <code>{token.token_hint}</code>
                  </td>
                  <td>{ago(token.last_used_at)}</td>
                  <td>{token.expires_at ? dateTime(token.expires_at) : "never"}</td>
                  <td>
                    <ActionButton label="Revoke" danger confirm={`Revoke the token "${token.name}"? Whatever uses it stops working.`} onAction={async () => {
                      await api("DELETE", `/v1/tokens/${token.id}`);
                      list.reload();
                    }} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <LoadMore list={list} />
    </section>
  );
}
