import { useState } from "hono/jsx/dom";
import { api, providerTypes, type CloudProvider, type ProviderType } from "../api.ts";
import { ActionButton, Empty, ErrorNote, Field, Loading, PageHeader, useSubmit } from "../components.tsx";
import { ago } from "../format.ts";
import { usePagedList } from "../hooks.ts";
import type { TeamPageProps } from "../main.tsx";
import { can } from "../roles.ts";

/** Per provider type: its credential fields and what the account must allow (docs/cloud-providers.md, "Permissions"). */
const providerKinds: Record<ProviderType, { label: string; region: string; fields: { name: string; label: string; secret: boolean }[]; needs: string }> = {
  aws: {
    label: "AWS",
    region: "eu-west-1",
    fields: [
      { name: "access_key_id", label: "Access key id", secret: false },
      { name: "secret_access_key", label: "Secret access key", secret: true },
    ],
    needs:
      "An IAM user or role allowed ec2:RunInstances, ec2:DescribeInstances, ec2:DescribeImages and ec2:DescribeRegions, ec2:CreateTags on RunInstances, and ec2:TerminateInstances on instances tagged stagely:managed=true.",
  },
  digitalocean: {
    label: "DigitalOcean",
    region: "fra1",
    fields: [{ name: "api_token", label: "API token", secret: true }],
    needs: "A personal access token with read and write access, or a custom-scoped one with droplet (create, read, delete), tag (create, read) and account (read).",
  },
  hetzner: {
    label: "Hetzner Cloud",
    region: "nbg1",
    fields: [{ name: "api_token", label: "API token", secret: true }],
    needs: "A project API token with Read & Write permission (a read-only token passes validation but cannot create servers).",
  },
  local: {
    label: "Local cloud (development)",
    region: "local",
    fields: [],
    needs: "Simulated VMs on the machine running Stagely (npm run cloud:local); no account.",
  },
};

export function CloudProviders({ team, role }: TeamPageProps) {
  const list = usePagedList<CloudProvider>(`/v1/teams/${team}/cloud-providers?limit=100`);
  const admin = can(role, "admin");
  return (
    <section>
      <PageHeader title="Cloud providers" />
      <p class="muted">Preview and builder VMs run in your own cloud accounts. Credentials are encrypted and never shown again.</p>
      <ErrorNote error={list.error} />
      {!list.items ? (
        <Loading what="cloud providers" />
      ) : list.items.length === 0 ? (
        <Empty>No cloud providers yet.{admin ? " Add one below." : ""}</Empty>
      ) : (
        <ul class="cards">
          {list.items.map((provider) => (
            <li class="card">
              <h2>{provider.name}</h2>
              <p>
                {providerKinds[provider.provider_type]?.label ?? provider.provider_type} · {provider.region}
                {provider.credentials.hint && (
                  <>
                    {" "}
                    · key <code>{provider.credentials.hint}</code>
                  </>
                )}
              </p>
              <p role="status">
                {provider.last_validated_at === null ? (
                  <span class="muted">Not validated yet.</span>
                ) : provider.validation_error ? (
                  <span class="text-bad">
                    Validation failed {ago(provider.last_validated_at)}: {provider.validation_error}
                  </span>
                ) : (
                  <span class="text-ok">Credentials valid (checked {ago(provider.last_validated_at)}).</span>
                )}
              </p>
              {admin && (
                <div class="actions">
                  <ActionButton label="Validate" busyLabel="Validating…" onAction={async () => {
                    await api("POST", `/v1/cloud-providers/${provider.id}/validate`);
                    list.reload();
                  }} />
                  <ActionButton label="Delete" danger confirm={`Delete the cloud provider ${provider.name}?`} onAction={async () => {
                    await api("DELETE", `/v1/cloud-providers/${provider.id}`);
                    list.reload();
                  }} />
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
      {admin && <AddProvider team={team} onAdded={list.reload} />}
    </section>
  );
}

function AddProvider({ team, onAdded }: { team: string; onAdded: () => void }) {
  const [type, setType] = useState<ProviderType>("hetzner");
  const kind = providerKinds[type];
  const add = useSubmit(async (data) => {
    const credentials = Object.fromEntries(kind.fields.map((f) => [f.name, String(data.get(f.name) ?? "")]));
    const endpoint = String(data.get("endpoint") ?? "");
    await api("POST", `/v1/teams/${team}/cloud-providers`, {
      name: data.get("name"),
      provider_type: type,
      region: data.get("region"),
      credentials,
      ...(endpoint ? { config: { endpoint } } : {}),
    });
    onAdded();
  });
  return (
    <form class="stack-form" onSubmit={add.onSubmit}>
      <h2>Add a cloud provider</h2>
      <Field label="Type">
        <select name="provider_type" onChange={(event: Event) => setType((event.target as HTMLSelectElement).value as ProviderType)}>
          {providerTypes.map((t) => (
            <option value={t} selected={t === type}>
              {providerKinds[t].label}
            </option>
          ))}
        </select>
      </Field>
      <p class="note">
        <strong>Needs:</strong> {kind.needs}
      </p>
      <Field label="Name">
        <input name="name" required maxLength={100} placeholder={`${type}-main`} />
      </Field>
      <Field label="Region">
        <input name="region" required pattern="[a-z0-9-]+" value={kind.region} />
      </Field>
      {kind.fields.map((f) => (
        <Field label={f.label}>
          <input name={f.name} type={f.secret ? "password" : "text"} required autocomplete="off" spellcheck={false} />
        </Field>
      ))}
      <Field label="API endpoint (optional)" hint="Only to reach another endpoint than the provider's default, e.g. the local cloud's address.">
        <input name="endpoint" type="url" placeholder={type === "local" ? "http://127.0.0.1:5489" : ""} />
      </Field>
      <ErrorNote error={add.error} />
      <button type="submit" class="primary" disabled={add.busy}>
        Add cloud provider
      </button>
    </form>
  );
}
