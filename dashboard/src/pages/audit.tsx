import { query, type AuditEntry, type Member, type Page } from "../api.ts";
import { Empty, ErrorNote, Field, Loading, LoadMore, PageHeader, TableHead } from "../components.tsx";
import { dateTime } from "../format.ts";
import { usePagedList, useResource } from "../hooks.ts";
import type { TeamPageProps } from "../main.tsx";
import { navigate } from "../router.ts";

const filterNames = ["action", "resource_type", "actor_id", "since", "until"] as const;

/** The team's audit log; the filters live in the address, so a filtered view can be shared. */
export function AuditLog({ team, url }: TeamPageProps) {
  const filters = Object.fromEntries(filterNames.map((name) => [name, url.searchParams.get(name) ?? ""])) as Record<(typeof filterNames)[number], string>;
  const toIso = (local: string) => (local ? new Date(local).toISOString() : undefined);
  const path = `/v1/teams/${team}/audit-logs${query({ ...filters, since: toIso(filters.since), until: toIso(filters.until), limit: 50 })}`;
  const entries = usePagedList<AuditEntry>(path);
  const members = useResource<Page<Member>>(`/v1/teams/${team}/members?limit=100`);
  const apply = (event: Event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    navigate(`/t/${team}/audit${query(Object.fromEntries(filterNames.map((name) => [name, String(data.get(name) ?? "")])))}`);
  };
  return (
    <section>
      <PageHeader title="Audit log" />
      <form class="filters" onSubmit={apply} aria-label="Filter the audit log">
        <Field label="Action">
          <input name="action" value={filters.action} placeholder="secret.updated" />
        </Field>
        <Field label="Resource type">
          <input name="resource_type" value={filters.resource_type} placeholder="project" />
        </Field>
        <Field label="Who">
          <select name="actor_id">
            <option value="">anyone</option>
            {members.data?.data.map((m) => (
              <option value={m.user_id} selected={m.user_id === filters.actor_id}>
                {m.email}
              </option>
            ))}
          </select>
        </Field>
        <Field label="From">
          <input name="since" type="datetime-local" value={filters.since} />
        </Field>
        <Field label="Until">
          <input name="until" type="datetime-local" value={filters.until} />
        </Field>
        <button type="submit">Filter</button>
        <a href={`/t/${team}/audit`}>Clear</a>
      </form>
      <ErrorNote error={entries.error} />
      {!entries.items ? (
        <Loading what="the audit log" />
      ) : entries.items.length === 0 ? (
        <Empty>Nothing recorded matches.</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead columns={["When", "Who", "Action", "Resource", "Details"]} />
            <tbody>
              {entries.items.map((entry) => (
                <tr>
                  <td class="nowrap">{dateTime(entry.timestamp)}</td>
                  <td>
                    {entry.actor_email ?? "Stagely"}
                    {entry.actor_ip && <div class="muted small">{entry.actor_ip}</div>}
                  </td>
                  <td>
                    <code>{entry.action}</code>
                  </td>
                  <td>
                    {entry.resource_type} <code class="small">{entry.resource_id}</code>
                  </td>
                  <td class="small">
                    <code class="wrap">{JSON.stringify(entry.metadata)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <LoadMore list={entries} />
    </section>
  );
}
