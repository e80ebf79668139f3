/**
 * Hetzner Cloud servers over the v1 REST API with a bearer token (a project API token with Read & Write).
 *
 * Labels (key=value; a key may carry a DNS-style prefix): `stagely/managed=true`, `stagely/agent=<agent id>`,
 * `stagely/environment=<environment id>`, `stagely/job=<job id>`.
 *
 * Idempotent create: Hetzner has no client token. We look for a server with the agent's label first, and the server
 * name (`stagely-<agent id>`) is unique within a project, so an attempt that raced past the lookup fails with
 * uniqueness_error and returns the server of the first one.
 */
import * as z from "zod";
import type { Credentials } from "./credentials.ts";
import { isProviderError, ProviderError, type ProviderErrorKind } from "./errors.ts";
import { cloudHttp, endpointSchema, kindForStatus, retryAfterSeconds, type HttpOptions } from "./http.ts";
import { machineTypeFor, sizeOverridesSchema } from "./sizes.ts";
import { checkFilter, checkSpec, readTags, tagPairs } from "./spec.ts";
import type { CloudProvider, Instance, InstanceFilter, InstanceState } from "./types.ts";

export const hetznerConfigSchema = z.strictObject({
  /** Default: https://api.hetzner.cloud */
  endpoint: endpointSchema.optional(),
  /** An image name; default ubuntu-24.04 (Hetzner picks the build for the server type's architecture). */
  image: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,63}$/, "must be an image name such as ubuntu-24.04").optional(),
  sizes: sizeOverridesSchema.optional(),
});
export type HetznerConfig = z.infer<typeof hetznerConfigSchema>;

const DEFAULT_ENDPOINT = "https://api.hetzner.cloud";
const DEFAULT_IMAGE = "ubuntu-24.04";
const MAX_USER_DATA_BYTES = 32 * 1024;
const PAGE_SIZE = 50;

const states: Record<string, InstanceState> = {
  initializing: "pending",
  starting: "pending",
  running: "running",
  stopping: "stopped",
  off: "stopped",
  deleting: "terminating",
};

const errorKinds: Record<string, ProviderErrorKind> = {
  unauthorized: "invalid_credentials",
  forbidden: "invalid_credentials",
  token_readonly: "invalid_credentials",
  resource_limit_exceeded: "quota_exceeded",
  resource_unavailable: "unsupported",
  placement_error: "unsupported",
  unsupported_error: "unsupported",
  invalid_input: "unsupported",
  rate_limit_exceeded: "rate_limited",
  not_found: "not_found",
  service_error: "transient",
  server_error: "transient",
  maintenance: "transient",
  timeout: "transient",
  unavailable: "transient",
  locked: "transient",
  conflict: "transient",
};

const server = z.object({
  id: z.number().int(),
  status: z.string(),
  created: z.string().nullish(),
  public_net: z.object({ ipv4: z.object({ ip: z.string() }).nullish() }).nullish(),
  private_net: z.array(z.object({ ip: z.string() })).nullish(),
  server_type: z.object({ name: z.string() }).nullish(),
  datacenter: z.object({ location: z.object({ name: z.string() }) }).nullish(),
  labels: z.record(z.string(), z.string()).nullish(),
});
type Server = z.infer<typeof server>;
const oneServer = z.object({ server });
const serverPage = z.object({
  servers: z.array(server),
  meta: z.object({ pagination: z.object({ next_page: z.number().int().nullable() }) }),
});
const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

function labelSelector(filter: InstanceFilter): string {
  return tagPairs(filter)
    .map(([name, value]) => `stagely/${name}=${value}`)
    .join(",");
}

const serverId = /^\d{1,19}$/;

export function createHetznerProvider(options: {
  credentials: Credentials<"hetzner">;
  region: string;
  config: HetznerConfig;
  http?: HttpOptions;
}): CloudProvider {
  const { credentials, config } = options;
  const base = `${config.endpoint ?? DEFAULT_ENDPOINT}/v1`;
  const http = cloudHttp("Hetzner Cloud", options.http ?? {}, [credentials.api_token]);

  function failure(response: Response, body: unknown): ProviderError {
    const error = errorBody.safeParse(body).data?.error;
    const kind = (error ? errorKinds[error.code] : undefined) ?? kindForStatus(response.status);
    return new ProviderError(kind, `Hetzner Cloud: ${http.safe(error?.message ?? `HTTP ${response.status}`)}`, {
      code: error?.code,
      retryAfterSeconds: kind === "rate_limited" ? retryAfterSeconds(response.headers) : undefined,
    });
  }

  function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${credentials.api_token}`, "content-type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    return http.json(new Request(`${base}${path}`, init), failure);
  }

  function toInstance(s: Server): Instance {
    return {
      id: String(s.id),
      state: states[s.status] ?? "pending",
      publicIp: s.public_net?.ipv4?.ip ?? null,
      privateIp: s.private_net?.[0]?.ip ?? null,
      region: s.datacenter?.location.name ?? options.region,
      instanceType: s.server_type?.name ?? "",
      tags: readTags((name) => s.labels?.[`stagely/${name}`]),
      createdAt: s.created ?? null,
    };
  }

  async function find(filter: InstanceFilter): Promise<Server[]> {
    const selector = encodeURIComponent(labelSelector(checkFilter(filter)));
    const found: Server[] = [];
    for (let page = 1; ; ) {
      const data = http.parse(serverPage, await call("GET", `/servers?label_selector=${selector}&per_page=${PAGE_SIZE}&page=${page}`));
      found.push(...data.servers.filter((s) => s.status !== "deleting"));
      const next = data.meta.pagination.next_page;
      if (next === null || next <= page) return found;
      page = next;
    }
  }

  return {
    type: "hetzner",

    async createInstance(spec) {
      checkSpec(spec, "Hetzner Cloud", MAX_USER_DATA_BYTES);
      const serverType = machineTypeFor("hetzner", spec.size, spec.architecture, config.sizes);
      const agent = { agent_id: spec.tags.agent_id };
      const [existing] = await find(agent);
      if (existing) return toInstance(existing);
      try {
        const created = await call("POST", "/servers", {
          name: `stagely-${spec.tags.agent_id.replaceAll("_", "-")}`,
          server_type: serverType,
          image: config.image ?? DEFAULT_IMAGE,
          location: spec.region,
          user_data: spec.userData,
          labels: Object.fromEntries(tagPairs(spec.tags).map(([name, value]) => [`stagely/${name}`, value])),
          start_after_create: true,
          public_net: { enable_ipv4: true, enable_ipv6: true },
        });
        return toInstance(http.parse(oneServer, created).server);
      } catch (error) {
        if (!(error instanceof ProviderError) || error.code !== "uniqueness_error") throw error;
        const [first] = await find(agent);
        if (!first) throw error;
        return toInstance(first);
      }
    },

    async getInstance(id) {
      if (!serverId.test(id)) throw new ProviderError("not_found", "Hetzner Cloud has no server with that id");
      return toInstance(http.parse(oneServer, await call("GET", `/servers/${id}`)).server);
    },

    async terminateInstance(id) {
      if (!serverId.test(id)) return;
      try {
        await call("DELETE", `/servers/${id}`);
      } catch (error) {
        if (!isProviderError(error, "not_found")) throw error;
      }
    },

    async validateCredentials() {
      http.parse(serverPage, await call("GET", `/servers?label_selector=${encodeURIComponent(labelSelector({}))}&per_page=1`));
    },

    async findInstances(filter = {}) {
      return (await find(filter)).map(toInstance);
    },
  };
}
