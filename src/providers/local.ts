/**
 * The local cloud (scripts/local-cloud): simulated VMs for development and tests, no account needed. With agent
 * simulation on, a VM that boots starts the agent simulator with the token from its user data.
 *
 * Tags (key = value, like AWS): `stagely:managed = true`, `stagely:agent = <agent id>`,
 * `stagely:environment = <environment id>`, `stagely:job = <job id>`.
 *
 * Idempotent create: the local cloud takes a client token, like EC2; a retry gets the instance of the first attempt.
 */
import * as z from "zod";
import { sha256Hex } from "../lib/crypto.ts";
import { isProviderError, ProviderError } from "./errors.ts";
import { cloudHttp, endpointSchema, kindForStatus, retryAfterSeconds, type HttpOptions } from "./http.ts";
import { machineTypeFor } from "./sizes.ts";
import { checkFilter, checkSpec, readTags, tagPairs } from "./spec.ts";
import type { CloudProvider, Instance } from "./types.ts";

export const LOCAL_CLOUD_DEFAULT_PORT = 5489;
const DEFAULT_ENDPOINT = `http://127.0.0.1:${LOCAL_CLOUD_DEFAULT_PORT}`;

export const localConfigSchema = z.strictObject({
  /** Default: http://127.0.0.1:5489 (started by npm run dev). */
  endpoint: endpointSchema.optional(),
});
export type LocalConfig = z.infer<typeof localConfigSchema>;

const MAX_USER_DATA_BYTES = 64 * 1024;

const instance = z.object({
  id: z.string(),
  state: z.enum(["pending", "running", "stopped", "terminating", "terminated"]),
  public_ip: z.string().nullable(),
  private_ip: z.string().nullable(),
  region: z.string(),
  size: z.string(),
  tags: z.record(z.string(), z.string()),
  created_at: z.string(),
});
const oneInstance = z.object({ instance });
const instancePage = z.object({ instances: z.array(instance), next_page_token: z.string().nullable() });
const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

const instanceId = /^local-[0-9a-f]{1,32}$/;

export function createLocalProvider(options: { region: string; config: LocalConfig; http?: HttpOptions }): CloudProvider {
  const base = `${options.config.endpoint ?? DEFAULT_ENDPOINT}/v1`;
  const http = cloudHttp("the local cloud", options.http ?? {}, []);

  function failure(response: Response, body: unknown): ProviderError {
    const error = errorBody.safeParse(body).data?.error;
    const kind = kindForStatus(response.status);
    return new ProviderError(kind, `local cloud: ${http.safe(error?.message ?? `HTTP ${response.status}`)}`, {
      code: error?.code,
      retryAfterSeconds: kind === "rate_limited" ? retryAfterSeconds(response.headers) : undefined,
    });
  }

  function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const init: RequestInit = { method, headers: { "content-type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    return http.json(new Request(`${base}${path}`, init), failure);
  }

  function toInstance(i: z.infer<typeof instance>): Instance {
    return {
      id: i.id,
      state: i.state,
      publicIp: i.public_ip,
      privateIp: i.private_ip,
      region: i.region,
      instanceType: i.size,
      tags: readTags((name) => i.tags[`stagely:${name}`]),
      createdAt: i.created_at,
    };
  }

  return {
    type: "local",

    async createInstance(spec) {
      checkSpec(spec, "the local cloud", MAX_USER_DATA_BYTES);
      const created = await call("POST", "/instances", {
        size: machineTypeFor("local", spec.size, spec.architecture, undefined),
        architecture: spec.architecture,
        region: spec.region,
        user_data: spec.userData,
        tags: Object.fromEntries(tagPairs(spec.tags).map(([name, value]) => [`stagely:${name}`, value])),
        client_token: await sha256Hex(spec.idempotencyKey),
      });
      return toInstance(http.parse(oneInstance, created).instance);
    },

    async getInstance(id) {
      if (!instanceId.test(id)) throw new ProviderError("not_found", "the local cloud has no instance with that id");
      return toInstance(http.parse(oneInstance, await call("GET", `/instances/${id}`)).instance);
    },

    async terminateInstance(id) {
      if (!instanceId.test(id)) return;
      try {
        await call("DELETE", `/instances/${id}`);
      } catch (error) {
        if (!isProviderError(error, "not_found")) throw error;
      }
    },

    async validateCredentials() {
      await call("GET", "/health");
    },

    async findInstances(filter = {}) {
      const tags = tagPairs(checkFilter(filter)).map(([name, value]) => `tag=${encodeURIComponent(`stagely:${name}=${value}`)}`);
      const found: Instance[] = [];
      for (let token = ""; ; ) {
        const query = [...tags, `page_token=${encodeURIComponent(token)}`].join("&");
        const page: z.infer<typeof instancePage> = http.parse(instancePage, await call("GET", `/instances?${query}`));
        found.push(...page.instances.map(toInstance));
        if (!page.next_page_token || page.next_page_token === token) return found;
        token = page.next_page_token;
      }
    },
  };
}
