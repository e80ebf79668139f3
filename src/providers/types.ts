import type { machineSizes } from "../db/schema.ts";

/** Provider types with an implementation (gcp and linode are reserved in the schema). */
export const supportedProviderTypes = ["aws", "digitalocean", "hetzner", "local"] as const;
export type SupportedProviderType = (typeof supportedProviderTypes)[number];

export type MachineSize = (typeof machineSizes)[number];
export type Architecture = "amd64" | "arm64";

/** What a VM is for. Every VM carries these plus `stagely:managed=true`, in each cloud's tag syntax. */
export interface InstanceTags {
  agent_id: string;
  environment_id?: string;
  job_id?: string;
}

export interface InstanceSpec {
  size: MachineSize;
  architecture: Architecture;
  region: string;
  /** Cloud-init user data (see cloud-init.ts), plain text. */
  userData: string;
  tags: InstanceTags;
  /**
   * The same for every retry of one logical create (normally the agent id): a retried create returns the VM of
   * the first attempt instead of making a second one.
   */
  idempotencyKey: string;
}

/** Normalized across clouds: "terminating" is on its way to "terminated". */
export type InstanceState = "pending" | "running" | "stopped" | "terminating" | "terminated";

export interface Instance {
  id: string;
  state: InstanceState;
  publicIp: string | null;
  privateIp: string | null;
  region: string;
  /** The cloud's own machine type (t3.small, s-2vcpu-4gb, cx23, ...). */
  instanceType: string;
  /** Stagely's tags as found on the VM; a VM tagged by hand may lack some. */
  tags: Partial<InstanceTags>;
  createdAt: string | null;
}

/** Narrows `findInstances`; an empty filter finds every Stagely-managed VM that is not terminated. */
export type InstanceFilter = Partial<InstanceTags>;

/**
 * One cloud account of one team. Errors are `ProviderError`s (errors.ts) with a kind the caller can act on.
 * `region` arguments default to the provider row's region; only AWS needs them (its instance ids are regional).
 */
export interface CloudProvider {
  readonly type: SupportedProviderType;
  createInstance(spec: InstanceSpec): Promise<Instance>;
  /** Throws a `not_found` ProviderError for an unknown id. */
  getInstance(id: string, region?: string): Promise<Instance>;
  /** Idempotent: an unknown or already terminated instance is success. */
  terminateInstance(id: string, region?: string): Promise<void>;
  /** A cheap read-only call that proves the credentials work. */
  validateCredentials(): Promise<void>;
  /** Stagely-managed VMs that are not terminated, across all pages. */
  findInstances(filter?: InstanceFilter, region?: string): Promise<Instance[]>;
}
