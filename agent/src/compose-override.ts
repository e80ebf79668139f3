import { parse, stringify } from "yaml";
import type { DeployCommand } from "../../src/agents/protocol.ts";
import { JobFailure } from "./job-context.ts";

/** The override compose reads after the project's own file: `-f docker-compose.yml -f docker-compose.stagely.yml`. */
export const OVERRIDE_FILE = "docker-compose.stagely.yml";

/** A file secret as written on the VM: `hostPath` (outside any checkout) is mounted read-only at `containerPath`. */
export interface MountedFile {
  hostPath: string;
  containerPath: string;
}

export interface ComposeFileSummary {
  services: string[];
  /** The file's `version` key, repeated in the override (compose v1 refuses to merge files of different versions). */
  version: string | null;
}

/** The services (and version key) of a compose file; a JobFailure says what is wrong with a file that defines none. */
export function readComposeFile(composeFile: string): ComposeFileSummary {
  let document: unknown;
  try {
    document = parse(composeFile);
  } catch (error) {
    throw new JobFailure("BAD_COMPOSE_FILE", `the compose file is not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  const services = (document as { services?: unknown } | null)?.services;
  if (!services || typeof services !== "object" || Array.isArray(services) || Object.keys(services).length === 0) {
    throw new JobFailure("BAD_COMPOSE_FILE", "the compose file defines no services (a top-level services: mapping)");
  }
  const version = (document as { version?: unknown }).version;
  return { services: Object.keys(services), version: typeof version === "string" || typeof version === "number" ? String(version) : null };
}

/**
 * `docker-compose.stagely.yml` for a DEPLOY: each built service pinned to its image, every service given its env
 * secrets (`global` ones, then those scoped to it, which win) and the file secrets mounted read-only.
 *
 * Secret values are not in the file: each value becomes a variable STAGELY_SECRET_<n> in compose's own environment
 * (`env`, which the caller passes to every compose command) and the file refers to it as `${STAGELY_SECRET_<n>}`, so
 * values stay off the disk and out of the process list.
 */
export function renderOverride(
  { services, version }: ComposeFileSummary,
  command: Pick<DeployCommand, "images" | "secrets">,
  files: MountedFile[],
): { yaml: string; env: Record<string, string> } {
  const unknown = Object.keys(command.images).filter((name) => !services.includes(name));
  if (unknown.length > 0) throw new JobFailure("BAD_COMPOSE_FILE", `the compose file does not define the built service(s) ${unknown.join(", ")}`);
  const env: Record<string, string> = {};
  const variableFor = new Map<string, string>();
  const reference = (value: string) => {
    let name = variableFor.get(value);
    if (!name) {
      name = `STAGELY_SECRET_${variableFor.size}`;
      variableFor.set(value, name);
      env[name] = value;
    }
    return `\${${name}}`;
  };
  const override: Record<string, Record<string, unknown>> = {};
  for (const service of services) {
    const entry: Record<string, unknown> = {};
    const image = command.images[service];
    if (image) entry.image = image;
    const environment: Record<string, string> = {};
    for (const secret of command.secrets.filter((s) => s.scope === "global")) environment[secret.key] = reference(secret.value);
    for (const secret of command.secrets.filter((s) => s.scope === service)) environment[secret.key] = reference(secret.value);
    if (Object.keys(environment).length > 0) entry.environment = environment;
    if (files.length > 0) entry.volumes = files.map((file) => `${file.hostPath}:${file.containerPath}:ro`);
    override[service] = entry;
  }
  return { yaml: stringify(version === null ? { services: override } : { version, services: override }), env };
}
