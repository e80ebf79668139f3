// Test helpers for the provider tests (imported only by *.test.ts files).
import { env } from "cloudflare:workers";
import type { RecordedRequest } from "../../test/fakes/cloud-accounts.ts";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { keyringFromConfig, type Keyring } from "../lib/crypto.ts";
import { getConfig } from "../config.ts";
import { newId } from "../lib/ids.ts";
import { encryptCredentials } from "./credentials.ts";
import type { ProviderOptions, ProviderRow } from "./factory.ts";
import type { InstanceSpec } from "./types.ts";

/** Providers built as a test server builds them (endpoint overrides allowed: they point at the fakes). */
export const inTests: ProviderOptions = { stage: "test" };

export function testKeyring(): Promise<Keyring> {
  return keyringFromConfig(getConfig(env));
}

export async function providerRow(
  providerType: ProviderRow["providerType"],
  credentials: object,
  options: { region: string; config?: Record<string, unknown> },
): Promise<ProviderRow> {
  const id = newId("cloudProvider");
  return {
    id,
    providerType,
    encryptedCredentials: await encryptCredentials(await testKeyring(), { id }, credentials),
    region: options.region,
    config: options.config ?? {},
  };
}

/** Calls a fake cloud's admin API (`/_fake/...`). */
export async function fakeAdmin<T = Record<string, unknown>>(fake: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = body === undefined ? {} : { method: "POST", body: JSON.stringify(body) };
  const response = await fetch(`${fakeUrl(fake)}/_fake/${path}`, init);
  if (!response.ok) throw new Error(`fake ${fake} ${path}: HTTP ${response.status} ${await response.text()}`);
  return (response.status === 204 ? {} : await response.json()) as T;
}

/** A request a fake cloud recorded; the body is EC2's parameters or the parsed JSON. */
type Recorded = Omit<RecordedRequest, "body"> & { body: Record<string, string> };

export async function recordedRequests(fake: string, key: string): Promise<Recorded[]> {
  return (await fakeAdmin<{ requests: Recorded[] }>(fake, `accounts/${encodeURIComponent(key)}/requests`)).requests;
}

/** Makes the next matching request(s) of this account fail (see test/fakes/cloud-accounts.ts). */
export function injectFailure(
  fake: string,
  key: string,
  failure: { match: string; status?: number; code?: string; message?: string; headers?: Record<string, string>; mode?: string; times?: number },
): Promise<unknown> {
  return fakeAdmin(fake, `accounts/${encodeURIComponent(key)}/failures`, failure);
}

/** A spec with fresh ids, so tests never meet each other's VMs. */
export function testSpec(overrides: Partial<InstanceSpec> = {}): InstanceSpec {
  const agentId = newId("agent");
  return {
    size: "small",
    architecture: "amd64",
    region: "us-east-1",
    userData: "#cloud-config\nruncmd: [[echo, hello]]\n",
    tags: { agent_id: agentId, job_id: newId("buildJob") },
    idempotencyKey: agentId,
    ...overrides,
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
