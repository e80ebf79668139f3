import { DEFAULT_YAML_LIMITS, isMapping, Problems, quoteInput, readBoundedYaml, type Mapping, type Path } from "./bounded-yaml.ts";

/**
 * The compose file of a pull request, read when the run is planned (before any VM exists) with the bounded YAML
 * reader, into the little Stagely needs: the services, the ports each publishes, whether it has a healthcheck, and
 * its image or build. Docker compose on the preview VM still reads the file itself (the text is sent as validated);
 * this check only makes a file that cannot work fail early, with errors naming the file and the path.
 *
 * Compose's own rules are followed where Stagely reads: service names, `image`/`build`, `ports` in the short syntax
 * (`"3000"`, `"8080:3000"`, `"127.0.0.1:8080:3000/tcp"`, `"9000-9002:9000-9002"`, `"${PORT}:3000"`) and the long one
 * (`{target, published, host_ip, protocol, mode, name, app_protocol}`). Everything else is left to docker compose.
 * Local tags (`!reset`, `!override`) are read as if untagged.
 */

/** The names docker compose reads at the repository root, in the order Stagely looks for them. */
export const COMPOSE_FILE_NAMES = ["docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"] as const;
export const COMPOSE_MAX_BYTES = 64 * 1024;
/** As many services as an agent reports in one STATUS. */
export const MAX_SERVICES = 100;
/** Compose service names become host names on the project's network. */
export const MAX_SERVICE_NAME_CHARS = 63;

export const composeServiceName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface ComposePort {
  /** The container port, or the first of a range (`targetEnd` is the last; the same for a single port). */
  target: number;
  targetEnd: number;
  /** The host port or range as written (`8080`, `8000-8010`, `${PORT}`), or null for a port docker picks. */
  published: string | null;
  protocol: string;
}

export interface ComposeService {
  name: string;
  image: string | null;
  build: boolean;
  ports: ComposePort[];
  healthcheck: boolean;
}

export interface ComposeFile {
  /** The file's name at the repository root. */
  path: string;
  services: ComposeService[];
}

export type ComposeFileResult = { ok: true; file: ComposeFile } | { ok: false; errors: string[] };

const protocols = ["tcp", "udp", "sctp"];
const portLongKeys = ["target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"];

function portNumber(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** `3000` or `3000-3005`: the first and last port; undefined when it is neither. */
function portRange(text: string): [number, number] | undefined {
  const [first, last, ...rest] = text.split("-");
  if (rest.length > 0 || first === undefined) return undefined;
  const start = portNumber(first);
  const end = last === undefined ? start : portNumber(last);
  if (start === undefined || end === undefined || end < start) return undefined;
  return [start, end];
}

/** The index of the last `:` that is not inside `${...}` or `[...]` (an IPv6 address), or -1. */
function lastSeparator(text: string): number {
  let depth = 0;
  let found = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "[" || (c === "{" && text[i - 1] === "$")) depth += 1;
    else if ((c === "]" || c === "}") && depth > 0) depth -= 1;
    else if (c === ":" && depth === 0) found = i;
  }
  return found;
}

/** A published port as written: checked when it is a literal (a variable is left to docker compose). */
function publishedPort(text: string, path: Path, problems: Problems): string | null | undefined {
  if (text === "") return null;
  if (text.includes("$") || portRange(text)) return text;
  problems.add(path, `has a host port ${quoteInput(text)} that is not a port (1-65535) or range`);
  return undefined;
}

function shortSyntaxPort(text: string, path: Path, problems: Problems): ComposePort | undefined {
  let rest = text.trim();
  let protocol = "tcp";
  const slash = rest.lastIndexOf("/");
  if (slash !== -1) {
    protocol = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
    if (!protocols.includes(protocol)) return void problems.add(path, `has protocol ${quoteInput(protocol)}; it must be tcp, udp or sctp`);
  }
  const separator = lastSeparator(rest);
  const container = rest.slice(separator + 1);
  const targets = portRange(container);
  if (!targets) {
    const hint = container.includes("$") ? " (variables are not supported in the container port)" : "";
    return void problems.add(path, `must end with a container port (1-65535) or range, like "8080:3000"${hint}`);
  }
  let published: string | null | undefined = null;
  if (separator !== -1) {
    const host = rest.slice(0, separator);
    // `IP:PORT` or `PORT`; `IP:` alone lets docker pick the host port.
    const hostSeparator = lastSeparator(host);
    published = publishedPort(host.slice(hostSeparator + 1), path, problems);
    if (published === undefined) return undefined;
  }
  return { target: targets[0], targetEnd: targets[1], published, protocol };
}

function longSyntaxPort(entry: Mapping, path: Path, problems: Problems): ComposePort | undefined {
  for (const key of Object.keys(entry)) if (!portLongKeys.includes(key)) problems.add([...path, key], "is not a key of a port (target, published, host_ip, protocol, mode, name, app_protocol)");
  const targetValue = entry.target;
  const target = typeof targetValue === "number" || typeof targetValue === "string" ? portNumber(String(targetValue)) : undefined;
  if (targetValue === undefined || targetValue === null) return void problems.add([...path, "target"], "is required");
  if (target === undefined) return void problems.add([...path, "target"], "must be a port number (1-65535)");
  const publishedValue = entry.published;
  let published: string | null | undefined = null;
  if (typeof publishedValue === "number" || typeof publishedValue === "string") published = publishedPort(String(publishedValue), [...path, "published"], problems);
  else if (publishedValue !== undefined && publishedValue !== null) return void problems.add([...path, "published"], "must be a port number or range");
  const protocol = entry.protocol ?? "tcp";
  if (typeof protocol !== "string" || !protocols.includes(protocol)) return void problems.add([...path, "protocol"], "must be tcp, udp or sctp");
  if (published === undefined) return undefined;
  return { target, targetEnd: target, published, protocol };
}

function servicePorts(value: unknown, path: Path, problems: Problems): ComposePort[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.add(path, "must be a list");
    return [];
  }
  const ports: ComposePort[] = [];
  value.forEach((entry, index) => {
    const at = [...path, index];
    let port: ComposePort | undefined;
    if (typeof entry === "number" && Number.isInteger(entry)) port = shortSyntaxPort(String(entry), at, problems);
    else if (typeof entry === "string") port = shortSyntaxPort(entry, at, problems);
    else if (isMapping(entry)) port = longSyntaxPort(entry, at, problems);
    else problems.add(at, 'must be a port like "8080:3000" or a mapping with target');
    if (port) ports.push(port);
  });
  return ports;
}

function hasHealthcheck(value: unknown, path: Path, problems: Problems): boolean {
  if (value === undefined || value === null) return false;
  if (!isMapping(value)) {
    problems.add(path, "must be a mapping");
    return false;
  }
  if (value.disable === true) return false;
  const test = value.test;
  return !(test === "NONE" || (Array.isArray(test) && test[0] === "NONE"));
}

function parseService(name: string, value: unknown, problems: Problems): ComposeService | undefined {
  const path: Path = ["services", name];
  if (!composeServiceName.test(name) || name.length > MAX_SERVICE_NAME_CHARS) {
    return void problems.add(path, `is not a valid service name (letters, digits, _, . and -, at most ${MAX_SERVICE_NAME_CHARS} characters)`);
  }
  if (!isMapping(value)) return void problems.add(path, "must be a mapping");
  const image = value.image;
  if (image !== undefined && image !== null && (typeof image !== "string" || image.trim() === "")) problems.add([...path, "image"], "must be an image name");
  const build = value.build;
  if (build !== undefined && build !== null && typeof build !== "string" && !isMapping(build)) problems.add([...path, "build"], "must be a path or a mapping");
  const hasImage = typeof image === "string" && image.trim() !== "";
  const hasBuild = typeof build === "string" || isMapping(build);
  if (!hasImage && !hasBuild && value.extends === undefined) problems.add(path, "needs image or build");
  return {
    name,
    image: hasImage ? image : null,
    build: hasBuild,
    ports: servicePorts(value.ports, [...path, "ports"], problems),
    healthcheck: hasHealthcheck(value.healthcheck, [...path, "healthcheck"], problems),
  };
}

/** Reads and checks a compose file; `path` is its name at the repository root, used in errors. Never throws on input. */
export function parseComposeFile(text: string, path: string): ComposeFileResult {
  const read = readBoundedYaml(text, path, { ...DEFAULT_YAML_LIMITS, maxBytes: COMPOSE_MAX_BYTES, maxScalarChars: COMPOSE_MAX_BYTES, allowLocalTags: true });
  if (!read.ok) return read;
  const problems = new Problems(path);
  const root = read.value;
  if (root === null) return { ok: false, errors: [`${path}: is empty; it needs services`] };
  if (!isMapping(root)) return { ok: false, errors: [`${path}: must be a mapping with services at the top level`] };
  const services = root.services;
  if (services === undefined || services === null) return { ok: false, errors: [`${path}: services is required`] };
  if (!isMapping(services)) return { ok: false, errors: [`${path}: services must be a mapping`] };
  const names = Object.keys(services);
  if (names.length === 0) return { ok: false, errors: [`${path}: services must list at least one service`] };
  if (names.length > MAX_SERVICES) return { ok: false, errors: [`${path}: services has ${names.length} services; at most ${MAX_SERVICES} are allowed`] };
  const parsed: ComposeService[] = [];
  for (const name of names) {
    const service = parseService(name, services[name], problems);
    if (service) parsed.push(service);
  }
  if (problems.count > 0) return { ok: false, errors: problems.summary() };
  return { ok: true, file: { path, services: parsed } };
}
