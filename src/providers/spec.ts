import { ProviderError } from "./errors.ts";
import type { InstanceFilter, InstanceSpec, InstanceTags } from "./types.ts";

/** Stagely's tag names, before each cloud's syntax (documented at the top of each provider file). */
const tagNames = { agent_id: "agent", environment_id: "environment", job_id: "job" } as const satisfies Record<keyof InstanceTags, string>;

/** `[name, value]` pairs: `managed=true` first, then agent, environment and job where set. */
export function tagPairs(tags: InstanceFilter): [string, string][] {
  const pairs: [string, string][] = [["managed", "true"]];
  for (const [key, name] of Object.entries(tagNames) as [keyof InstanceTags, string][]) {
    const value = tags[key];
    if (value !== undefined) pairs.push([name, value]);
  }
  return pairs;
}

/** The reverse of tagPairs: Stagely's tags found on a VM, given a lookup by name. */
export function readTags(valueOf: (name: string) => string | undefined): Partial<InstanceTags> {
  const tags: Partial<InstanceTags> = {};
  for (const [key, name] of Object.entries(tagNames) as [keyof InstanceTags, string][]) {
    const value = valueOf(name);
    if (value) tags[key] = value;
  }
  return tags;
}

/** Fits every cloud's tag syntax (Hetzner label values are the strictest: 63 characters). */
const tagValue = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const region = /^[a-z0-9][a-z0-9-]{0,31}$/;

export function checkRegion(value: string): string {
  if (!region.test(value)) throw new ProviderError("unsupported", "region must be a region name such as eu-west-1, nyc3 or fsn1");
  return value;
}

export function checkFilter(filter: InstanceFilter): InstanceFilter {
  for (const [key, value] of Object.entries(filter)) {
    if (value !== undefined && !tagValue.test(value)) throw new ProviderError("unsupported", `tag ${key} must be an id (letters, digits, _ and -)`);
  }
  return filter;
}

/** Rejects a spec no cloud could take, before any call: bad ids, a bad region, user data over the cloud's limit. */
export function checkSpec(spec: InstanceSpec, cloud: string, maxUserDataBytes: number): void {
  checkRegion(spec.region);
  if (!spec.tags?.agent_id) throw new ProviderError("unsupported", "tags.agent_id is required");
  checkFilter(spec.tags);
  if (!spec.idempotencyKey) throw new ProviderError("unsupported", "idempotencyKey is required");
  const bytes = new TextEncoder().encode(spec.userData).length;
  if (bytes > maxUserDataBytes) throw new ProviderError("unsupported", `user data is ${bytes} bytes; ${cloud} takes at most ${maxUserDataBytes}`);
}
