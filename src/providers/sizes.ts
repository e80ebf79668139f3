import * as z from "zod";
import { machineSizes } from "../db/schema.ts";
import { ProviderError } from "./errors.ts";
import type { Architecture, MachineSize } from "./types.ts";

type SizeMap = Partial<Record<Architecture, Record<MachineSize, string>>>;

/** ARCHITECTURE.md section 7. Catalogs change, so a provider row's `config.sizes` may override any entry. */
export const defaultSizes = {
  aws: {
    amd64: { small: "t3.small", medium: "c5.xlarge", large: "c5.2xlarge", xlarge: "c5.4xlarge" },
    arm64: { small: "t4g.small", medium: "c6g.xlarge", large: "c6g.2xlarge", xlarge: "c6g.4xlarge" },
  },
  digitalocean: {
    amd64: { small: "s-2vcpu-4gb", medium: "c-4", large: "c-8", xlarge: "c-16" },
  },
  hetzner: {
    amd64: { small: "cx23", medium: "cx33", large: "cx43", xlarge: "cx53" },
    arm64: { small: "cax11", medium: "cax21", large: "cax31", xlarge: "cax41" },
  },
  local: {
    amd64: { small: "local-small", medium: "local-medium", large: "local-large", xlarge: "local-xlarge" },
    arm64: { small: "local-small", medium: "local-medium", large: "local-large", xlarge: "local-xlarge" },
  },
} satisfies Record<string, SizeMap>;

const machineType = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "must be a machine type name such as c5.xlarge");
const sizesByArch = z.strictObject(Object.fromEntries(machineSizes.map((size) => [size, machineType.optional()])));

/** `config.sizes`: `{ "amd64": { "medium": "c6i.xlarge" } }` replaces single entries of the default map. */
export const sizeOverridesSchema = z.strictObject({ amd64: sizesByArch.optional(), arm64: sizesByArch.optional() });
type SizeOverrides = z.infer<typeof sizeOverridesSchema>;

/** The cloud's machine type for a size; "unsupported" when the cloud has none (e.g. arm64 on DigitalOcean). */
export function machineTypeFor(
  cloud: keyof typeof defaultSizes,
  size: MachineSize,
  architecture: Architecture,
  overrides: SizeOverrides | undefined,
): string {
  const defaults: SizeMap = defaultSizes[cloud];
  const type = overrides?.[architecture]?.[size] ?? defaults[architecture]?.[size];
  if (!type) throw new ProviderError("unsupported", `${cloud} has no ${architecture} machine for size ${size}`);
  return type;
}
