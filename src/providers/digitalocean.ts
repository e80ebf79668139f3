/**
 * DigitalOcean droplets over the v2 REST API with a bearer token.
 *
 * Tags (DigitalOcean tags are bare names of letters, digits, ":", "-" and "_"): `stagely:managed`,
 * `stagely:agent:<agent id>`, `stagely:environment:<environment id>`, `stagely:job:<job id>`.
 *
 * Idempotent create: DigitalOcean has no client token. We look for a droplet with the agent's tag first; after
 * creating, we list that tag again and keep only the oldest droplet (lowest id), so two attempts that raced past the
 * lookup converge on one VM. DigitalOcean has no arm64 droplets.
 */
import * as z from "zod";
import type { Credentials } from "./credentials.ts";
import { isProviderError, ProviderError } from "./errors.ts";
import { cloudHttp, endpointSchema, kindForStatus, retryAfterSeconds, type HttpOptions } from "./http.ts";
import { machineTypeFor, sizeOverridesSchema } from "./sizes.ts";
import { checkFilter, checkSpec, readTags, tagPairs } from "./spec.ts";
import type { CloudProvider, Instance, InstanceFilter, InstanceState } from "./types.ts";

export const digitalOceanConfigSchema = z.strictObject({
  /** Default: https://api.digitalocean.com */
  endpoint: endpointSchema.optional(),
  /** An image slug; default ubuntu-24-04-x64. */
  image: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,63}$/, "must be an image slug such as ubuntu-24-04-x64").optional(),
  sizes: sizeOverridesSchema.optional(),
});
export type DigitalOceanConfig = z.infer<typeof digitalOceanConfigSchema>;

const DEFAULT_ENDPOINT = "https://api.digitalocean.com";
const DEFAULT_IMAGE = "ubuntu-24-04-x64";
const MAX_USER_DATA_BYTES = 64 * 1024;
const PAGE_SIZE = 200;

const states: Record<string, InstanceState> = { new: "pending", active: "running", off: "stopped", archive: "terminated" };

const droplet = z.object({
  id: z.number().int(),
  status: z.string(),
  created_at: z.string().nullish(),
  size_slug: z.string().nullish(),
  region: z.object({ slug: z.string() }).nullish(),
  networks: z.object({ v4: z.array(z.object({ ip_address: z.string(), type: z.string() })) }).nullish(),
  tags: z.array(z.string()).nullish(),
});
type Droplet = z.infer<typeof droplet>;
const oneDroplet = z.object({ droplet });
const dropletPage = z.object({
  droplets: z.array(droplet),
  links: z.object({ pages: z.object({ next: z.string().optional() }).nullish() }).nullish(),
});
const errorBody = z.object({ id: z.string().optional(), message: z.string().optional() });

/** DigitalOcean's tag names for Stagely's tags. */
function tagsOf(filter: InstanceFilter): string[] {
  return tagPairs(filter).map(([name, value]) => (name === "managed" ? "stagely:managed" : `stagely:${name}:${value}`));
}

const dropletId = /^\d{1,19}$/;

export function createDigitalOceanProvider(options: {
  credentials: Credentials<"digitalocean">;
  region: string;
  config: DigitalOceanConfig;
  http?: HttpOptions;
}): CloudProvider {
  const { credentials, config } = options;
  const base = `${config.endpoint ?? DEFAULT_ENDPOINT}/v2`;
  const http = cloudHttp("DigitalOcean", options.http ?? {}, [credentials.api_token]);

  function failure(response: Response, body: unknown): ProviderError {
    const { id, message = `HTTP ${response.status}` } = errorBody.safeParse(body).data ?? {};
    const kind = response.status === 422 && /limit/i.test(message) ? "quota_exceeded" : kindForStatus(response.status);
    return new ProviderError(kind, `DigitalOcean: ${http.safe(message)}`, {
      code: id,
      retryAfterSeconds: kind === "rate_limited" ? retryAfterSeconds(response.headers) : undefined,
    });
  }

  function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${credentials.api_token}`, "content-type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    return http.json(new Request(`${base}${path}`, init), failure);
  }

  function toInstance(d: Droplet): Instance {
    const tagValue = (name: string) => d.tags?.find((tag) => tag.startsWith(`stagely:${name}:`))?.slice(`stagely:${name}:`.length);
    const address = (type: string) => d.networks?.v4.find((network) => network.type === type)?.ip_address ?? null;
    return {
      id: String(d.id),
      state: states[d.status] ?? "pending",
      publicIp: address("public"),
      privateIp: address("private"),
      region: d.region?.slug ?? options.region,
      instanceType: d.size_slug ?? "",
      tags: readTags(tagValue),
      createdAt: d.created_at ?? null,
    };
  }

  /** Live droplets carrying every tag of the filter; listed by the narrowest tag, every page. */
  async function find(filter: InstanceFilter): Promise<Droplet[]> {
    const tags = tagsOf(checkFilter(filter));
    const found: Droplet[] = [];
    for (let page = 1; ; ) {
      const query = `tag_name=${encodeURIComponent(tags.at(-1)!)}&per_page=${PAGE_SIZE}&page=${page}`;
      const data = http.parse(dropletPage, await call("GET", `/droplets?${query}`));
      found.push(...data.droplets.filter((d) => d.status !== "archive" && tags.every((tag) => d.tags?.includes(tag))));
      // Only the page number is taken from the link: the token is never sent to a host the response names.
      const next = data.links?.pages?.next;
      const nextPage = next && URL.canParse(next) ? Number(new URL(next).searchParams.get("page")) : Number.NaN;
      if (!Number.isInteger(nextPage) || nextPage <= page) return found;
      page = nextPage;
    }
  }

  async function terminateInstance(id: string): Promise<void> {
    if (!dropletId.test(id)) return;
    try {
      await call("DELETE", `/droplets/${id}`);
    } catch (error) {
      if (!isProviderError(error, "not_found")) throw error;
    }
  }

  return {
    type: "digitalocean",

    async createInstance(spec) {
      checkSpec(spec, "DigitalOcean", MAX_USER_DATA_BYTES);
      if (spec.architecture !== "amd64") throw new ProviderError("unsupported", "DigitalOcean has no arm64 droplets");
      const size = machineTypeFor("digitalocean", spec.size, "amd64", config.sizes);
      const agent = { agent_id: spec.tags.agent_id };
      const byAge = (droplets: Droplet[]) => droplets.sort((a, b) => a.id - b.id);

      const [existing] = byAge(await find(agent));
      if (existing) return toInstance(existing);
      const created = http.parse(
        oneDroplet,
        await call("POST", "/droplets", {
          name: `stagely-${spec.tags.agent_id.replaceAll("_", "-")}`,
          region: spec.region,
          size,
          image: config.image ?? DEFAULT_IMAGE,
          user_data: spec.userData,
          tags: tagsOf(spec.tags),
        }),
      ).droplet;
      const [kept = created, ...duplicates] = byAge([created, ...(await find(agent)).filter((d) => d.id !== created.id)]);
      for (const duplicate of duplicates) await terminateInstance(String(duplicate.id));
      return toInstance(kept);
    },

    async getInstance(id) {
      if (!dropletId.test(id)) throw new ProviderError("not_found", "DigitalOcean has no droplet with that id");
      return toInstance(http.parse(oneDroplet, await call("GET", `/droplets/${id}`)).droplet);
    },

    terminateInstance,

    async validateCredentials() {
      const { account } = http.parse(z.object({ account: z.object({ status: z.string() }) }), await call("GET", "/account"));
      if (account.status === "locked") throw new ProviderError("invalid_credentials", "DigitalOcean: the account is locked");
    },

    async findInstances(filter = {}) {
      return (await find(filter)).map(toInstance);
    },
  };
}

const dockerCredentials = z.object({ auths: z.record(z.string(), z.object({ auth: z.string() })) });

/**
 * Expiring read-write Docker credentials for the account's registry `registryName` (its docker-credentials endpoint,
 * answered as a Docker config whose auth is base64 "<user>:<password>").
 */
export async function digitalOceanRegistryCredentials(options: {
  credentials: Credentials<"digitalocean">;
  config: DigitalOceanConfig;
  registryName: string;
  expirySeconds: number;
  http?: HttpOptions;
}): Promise<{ registry: string; username: string; password: string }> {
  const http = cloudHttp("DigitalOcean", options.http ?? {}, [options.credentials.api_token]);
  const url = `${options.config.endpoint ?? DEFAULT_ENDPOINT}/v2/registries/${encodeURIComponent(options.registryName)}/docker-credentials?read_write=true&expiry_seconds=${options.expirySeconds}`;
  const failure = (response: Response, body: unknown) => {
    const { id, message = `HTTP ${response.status}` } = errorBody.safeParse(body).data ?? {};
    return new ProviderError(kindForStatus(response.status), `DigitalOcean registry ${options.registryName}: ${http.safe(message)}`, { code: id });
  };
  const body = await http.json(new Request(url, { headers: { authorization: `Bearer ${options.credentials.api_token}` } }), failure);
  const [host, entry] = Object.entries(http.parse(dockerCredentials, body).auths)[0] ?? [];
  if (!host || !entry) throw new ProviderError("transient", "DigitalOcean sent docker credentials without an auth entry");
  const [username, ...rest] = new TextDecoder().decode(Uint8Array.from(atob(entry.auth), (c) => c.charCodeAt(0))).split(":");
  return { registry: host, username: username!, password: rest.join(":") };
}
