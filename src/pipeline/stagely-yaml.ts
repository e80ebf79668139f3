import * as z from "zod";
import { machineSizes } from "../db/schema.ts";
import { DEFAULT_YAML_LIMITS, isMapping, Problems, quoteInput, readBoundedYaml, type Mapping, type Path } from "./bounded-yaml.ts";
import { composeServiceName, type ComposeFile } from "./compose-file.ts";

/**
 * stagely.yaml (version 2, ARCHITECTURE.md section 6): parsing, validation, defaults and variable substitution.
 *
 * `parseStagelyYaml` never throws on bad input: it answers every problem it finds, each naming its path
 * (`stagely.yaml: builds.api.context is required`), or the normalized config stored on `workflow_runs.config`.
 *
 * Rules beyond the spec's comments:
 * - A key with an empty value (`cache_from:`) counts as not given. `version` may be 2 or "2".
 * - Paths (`context`, `dockerfile`) are relative, use `/`, and never contain `..`. `dockerfile` is relative to the
 *   context (as in docker compose). The output's `context_path` and `dockerfile_path` are relative to the repository
 *   root and normalized: no `./`, no empty segments, no trailing `/`; the root itself is `.`.
 * - Durations are Go-style (`90s`, `20m`, `1h30m`, `1.5h`), between 1s and 6h; the output has whole seconds (rounded up).
 * - Variables `${NAME}` (see `stagelyVariables`) are substituted in exactly these places: `builds.*.build_args`
 *   values, `builds.*.cache_from` entries, `preview.lifecycle.on_start[].command`, `test.commands` entries and
 *   `test.env` values. An unknown or unterminated `${` there is an error. `$${` stands for a literal `${` (so a shell
 *   command can still say `echo $${HOME}`); a `$` not followed by `{` is left alone. Everywhere else `${...}` is plain text.
 * - build_args and test.env names are environment-variable names (`^[A-Za-z_][A-Za-z0-9_]*$`); numbers and
 *   booleans are accepted as values and kept as written (`1.10`, `007`, `yes`).
 * - The file is read by the bounded YAML reader (bounded-yaml.ts): at most 64 KiB, with limits on tokens, depth,
 *   aliases and their expansion. YAML anchors, aliases and merge keys (`<<: *defaults`) work.
 * - Lengths: build names at most 64 characters; paths, cache_from entries and test.image at most 1024 (the agent
 *   protocol's limit); values and commands at most 8 KiB once variables are substituted, and all substituted text
 *   together at most 256 KiB; the stored configuration (JSON) at most 256 KiB.
 * - `preview.expose: {service, port}` is the compose service and container port the preview URL reaches; by default
 *   the only service of the compose file that publishes a TCP port (with its one container port).
 *   `preview.routes: [{name, service, port}]` are extra hosts `<name>--<hash>.<preview domain>`: names are DNS
 *   labels (lowercase letters, digits, single hyphens) of at most 45 characters, unique. Services named in
 *   `preview` (expose, routes, lifecycle) must be services of the compose file.
 */

export const STAGELY_YAML_MAX_BYTES = 64 * 1024;
export const MAX_BUILDS = 32;
export const MIN_TIMEOUT_SECONDS = 1;
export const MAX_TIMEOUT_SECONDS = 6 * 60 * 60;
export const MAX_BUILD_NAME_CHARS = 64;
/** The agent protocol's limit for paths and image references. */
export const MAX_PATH_CHARS = 1024;
export const MAX_VALUE_CHARS = 8 * 1024;
/** The parsed configuration stored with a run (workflow_runs.config), as JSON; also the budget of substituted text. */
export const MAX_RUN_CONFIG_BYTES = 256 * 1024;
export const MAX_ROUTES = 16;
/** A route's host is `<name>--<16-character hash>`, one DNS label of at most 63 characters. */
export const MAX_ROUTE_NAME_CHARS = 63 - 2 - 16;

export const stagelyPlatforms = ["linux/amd64", "linux/arm64"] as const;
export const stagelyVariables = ["STAGELY_HASH", "STAGELY_PREVIEW_URL", "COMMIT_HASH", "BRANCH", "PR_NUMBER", "PROJECT_ID"] as const;

export type MachineSize = (typeof machineSizes)[number];
export type StagelyPlatform = (typeof stagelyPlatforms)[number];
export type StagelyVariable = (typeof stagelyVariables)[number];

export interface StagelyYamlContext {
  /** The project's default_preview_size, used when preview.size is not given. */
  defaultPreviewSize: MachineSize;
  /** Values of the variables, known when the run is created. */
  variables: Record<StagelyVariable, string | number>;
  /**
   * The pull request's compose file, which `preview` names services of. Null when it could not be read (the caller
   * reports why): stagely.yaml's own problems are still found, but the result is never ok.
   */
  compose: ComposeFile | null;
}

const DEFAULT_MACHINE: MachineSize = "medium";
const DEFAULT_TIMEOUT_SECONDS = 30 * 60;

// ---- The normalized output: the snapshot stored on workflow_runs.config ----

const machineSize = z.enum(machineSizes);
const relativePath = z.string().min(1);
const stringMap = z.record(z.string(), z.string());
const seconds = z.number().int().min(MIN_TIMEOUT_SECONDS).max(MAX_TIMEOUT_SECONDS);
const port = z.number().int().min(1).max(65535);

/** One build job: one build target on one architecture (a row of build_jobs). */
export const buildJobSpecSchema = z.strictObject({
  /** `<build>_<arch>`, unique within a run. */
  name: z.string(),
  build: z.string(),
  architecture: z.enum(["amd64", "arm64"]),
  platform: z.enum(stagelyPlatforms),
  context_path: relativePath,
  dockerfile_path: relativePath,
  machine: machineSize,
  timeout_seconds: seconds,
  build_args: stringMap,
  cache_from: z.array(z.string()),
});

export const buildSpecSchema = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_-]+$/),
  context_path: relativePath,
  dockerfile_path: relativePath,
  platforms: z.array(z.enum(stagelyPlatforms)).min(1),
  machine: machineSize,
  timeout_seconds: seconds,
  build_args: stringMap,
  cache_from: z.array(z.string()),
  jobs: z.array(buildJobSpecSchema).min(1),
});

export const stagelyConfigSchema = z.strictObject({
  version: z.literal(2),
  /** In the order of the file (an array, because jsonb does not keep key order). */
  builds: z.array(buildSpecSchema).min(1).max(MAX_BUILDS),
  preview: z.strictObject({
    size: machineSize,
    /** The compose service and container port the preview URL reaches. */
    expose: z.strictObject({ service: z.string(), port }),
    /** Extra hosts `<name>--<hash>.<preview domain>`. */
    routes: z.array(z.strictObject({ name: z.string(), service: z.string(), port })),
    lifecycle: z.strictObject({ on_start: z.array(z.strictObject({ service: z.string(), command: z.string() })) }),
  }),
  test: z.strictObject({
    enabled: z.boolean(),
    image: z.string().nullable(),
    commands: z.array(z.string()),
    env: stringMap,
    timeout_seconds: seconds,
  }),
});

export type BuildJobSpec = z.infer<typeof buildJobSpecSchema>;
export type BuildSpec = z.infer<typeof buildSpecSchema>;
export type StagelyConfig = z.infer<typeof stagelyConfigSchema>;

export type StagelyYamlResult = { ok: true; config: StagelyConfig } | { ok: false; errors: string[] };

/** Every build job of a config, in file order (builds, then platforms). */
export function buildJobsOf(config: StagelyConfig): BuildJobSpec[] {
  return config.builds.flatMap((build) => build.jobs);
}

// ---- Parsing ----

const buildName = /^[a-zA-Z0-9_-]+$/;
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const routeName = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** What every check of one file needs: where problems go, the variables, and the text of scalars as written. */
interface Reading {
  problems: Problems;
  variables: Record<string, string>;
  textOf: (container: object, key: string | number) => string | undefined;
  /** Characters produced by variable substitution so far. */
  substituted: number;
}

/** A key's value; an empty value (null) counts as not given. */
function field(map: Mapping, key: string): unknown {
  if (!Object.hasOwn(map, key)) return undefined;
  const value = map[key];
  return value === null ? undefined : value;
}

function checkKeys(map: Mapping, path: Path, known: readonly string[], problems: Problems): void {
  for (const key of Object.keys(map)) {
    if (!known.includes(key)) problems.add([...path, key], "is not a known key");
  }
}

function mapping(value: unknown, path: Path, problems: Problems): Mapping | undefined {
  if (value === undefined) return undefined;
  if (isMapping(value)) return value;
  problems.add(path, "must be a mapping");
  return undefined;
}

function list(value: unknown, path: Path, problems: Problems): unknown[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value;
  problems.add(path, "must be a list");
  return undefined;
}

function nonEmptyString(value: unknown, path: Path, problems: Problems, maxChars = MAX_VALUE_CHARS): string | undefined {
  if (typeof value !== "string") {
    problems.add(path, "must be a string");
    return undefined;
  }
  if (value.trim() === "") {
    problems.add(path, "must not be empty");
    return undefined;
  }
  if (value.length > maxChars) {
    problems.add(path, `is longer than ${maxChars} characters`);
    return undefined;
  }
  return value;
}

function oneOf<T extends string>(value: unknown, path: Path, allowed: readonly T[], problems: Problems): T | undefined {
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  problems.add(path, `must be ${allowed.length === 2 ? allowed.join(" or ") : `one of ${allowed.join(", ")}`}`);
  return undefined;
}

function portNumber(value: unknown, path: Path, problems: Problems): number | undefined {
  if (typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535) return value;
  problems.add(path, "must be a port number (1-65535)");
  return undefined;
}

/** A repository-relative path, normalized; undefined (and a problem) when unsafe. */
function safeRelativePath(value: unknown, path: Path, problems: Problems): string | undefined {
  const text = nonEmptyString(value, path, problems, MAX_PATH_CHARS);
  if (text === undefined) return undefined;
  if (/[\u0000-\u001f\u007f]/.test(text)) return void problems.add(path, "must not contain control characters");
  if (text.includes("\\")) return void problems.add(path, "must use / to separate folders");
  if (text.startsWith("/") || /^[A-Za-z]:/.test(text)) return void problems.add(path, "must be a relative path");
  const segments = text.split("/");
  if (segments.includes("..")) return void problems.add(path, 'must not contain ".."');
  return segments.filter((s) => s !== "" && s !== ".").join("/") || ".";
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const durationPart = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds of a Go duration string (`1h30m`, `90s`, `1.5h`, `0`); undefined when it is not one. Signs are not accepted. */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  if (text === "" || text.length > 40) return undefined;
  let total = 0;
  let index = 0;
  while (index < text.length) {
    durationPart.lastIndex = index;
    const match = durationPart.exec(text);
    if (!match) return undefined;
    total += Number(match[1]) * durationUnits[match[2]!]!;
    index = durationPart.lastIndex;
  }
  return total;
}

function timeoutSeconds(value: unknown, path: Path, problems: Problems): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === "string" ? parseGoDuration(value.trim()) : undefined;
  if (ms === undefined) return void problems.add(path, "must be a duration like 90s, 20m or 1h30m");
  const result = Math.ceil(ms / 1000);
  if (ms < MIN_TIMEOUT_SECONDS * 1000 || result > MAX_TIMEOUT_SECONDS) return void problems.add(path, "must be between 1s and 6h");
  return result;
}

/**
 * `${NAME}` replaced by the variable's value, `$${` by `${`. The result is built piece by piece and given up as soon
 * as it would pass MAX_VALUE_CHARS, or the whole parse's substituted text would pass MAX_RUN_CONFIG_BYTES.
 */
function substitute(text: string, path: Path, reading: Reading): string {
  const { problems, variables } = reading;
  let out = "";
  let last = 0;
  for (const match of text.matchAll(/\$\$\{|\$\{([^}]*)(\})?/g)) {
    let replacement: string;
    if (match[0] === "$${") replacement = "${";
    else if (match[2] === undefined) {
      problems.add(path, "has a ${ without a closing }");
      return text;
    } else {
      const name = match[1]!;
      const value = Object.hasOwn(variables, name) ? variables[name] : undefined;
      if (value === undefined) {
        problems.add(path, `uses unknown variable \${${quoteInput(name).slice(1, -1)}} (known: ${stagelyVariables.join(", ")}; write $\${ for a literal \${)`);
        return text;
      }
      replacement = value;
    }
    const before = text.slice(last, match.index);
    if (out.length + before.length + replacement.length > MAX_VALUE_CHARS) {
      problems.add(path, `is longer than ${MAX_VALUE_CHARS} characters once variables are substituted`);
      return text;
    }
    out += before + replacement;
    last = match.index + match[0].length;
  }
  if (last === 0) return text;
  out += text.slice(last);
  if (out.length > MAX_VALUE_CHARS) {
    problems.add(path, `is longer than ${MAX_VALUE_CHARS} characters once variables are substituted`);
    return text;
  }
  reading.substituted += out.length;
  if (reading.substituted > MAX_RUN_CONFIG_BYTES) {
    problems.add([], `has more than ${MAX_RUN_CONFIG_BYTES / 1024} KiB of text once variables are substituted`);
    return text;
  }
  return out;
}

/** A mapping of names to text values (build_args, test.env): scalars as written, variables substituted. */
function textMap(value: unknown, path: Path, reading: Reading): Record<string, string> {
  const { problems } = reading;
  const map = mapping(value, path, problems);
  const entries: [string, string][] = [];
  for (const [key, raw] of Object.entries(map ?? {})) {
    if (!envName.test(key)) {
      problems.add([...path, key], "is not a valid name (letters, digits and _, not starting with a digit)");
      continue;
    }
    const text = typeof raw === "string" ? raw : typeof raw === "number" || typeof raw === "boolean" ? reading.textOf(map!, key) : undefined;
    if (text === undefined) {
      problems.add([...path, key], "must be a string, number or boolean");
      continue;
    }
    if (text.length > MAX_VALUE_CHARS) {
      problems.add([...path, key], `is longer than ${MAX_VALUE_CHARS} characters`);
      continue;
    }
    entries.push([key, substitute(text, [...path, key], reading)]);
  }
  // fromEntries defines own properties, so even a key named __proto__ stays plain data.
  return Object.fromEntries(entries);
}

/** A list of non-empty strings, variables substituted. */
function stringList(value: unknown, path: Path, reading: Reading, maxChars = MAX_VALUE_CHARS): string[] {
  const items = list(value, path, reading.problems) ?? [];
  const out: string[] = [];
  items.forEach((item, index) => {
    const text = nonEmptyString(item === null ? undefined : item, [...path, index], reading.problems, maxChars);
    if (text !== undefined) out.push(substitute(text, [...path, index], reading));
  });
  return out;
}

const buildKeys = ["context", "dockerfile", "platform", "platforms", "machine", "build_args", "cache_from", "timeout"] as const;

function parsePlatforms(build: Mapping, path: Path, problems: Problems): StagelyPlatform[] | undefined {
  const single = field(build, "platform");
  const many = field(build, "platforms");
  if (single !== undefined && many !== undefined) return void problems.add(path, "has both platform and platforms; set only one");
  if (single === undefined && many === undefined) return void problems.add(path, "needs platform or platforms");
  if (single !== undefined) {
    const platform = oneOf(single, [...path, "platform"], stagelyPlatforms, problems);
    return platform ? [platform] : undefined;
  }
  const items = list(many, [...path, "platforms"], problems);
  if (!items) return undefined;
  if (items.length === 0) return void problems.add([...path, "platforms"], "must list at least one platform");
  const platforms: StagelyPlatform[] = [];
  let valid = true;
  items.forEach((item, index) => {
    const platform = oneOf(item, [...path, "platforms", index], stagelyPlatforms, problems);
    if (!platform) valid = false;
    else if (platforms.includes(platform)) {
      problems.add([...path, "platforms", index], `repeats ${platform}`);
      valid = false;
    } else platforms.push(platform);
  });
  return valid ? platforms : undefined;
}

function parseBuild(name: string, raw: unknown, reading: Reading): BuildSpec | undefined {
  const { problems } = reading;
  const path: Path = ["builds", name];
  if (!buildName.test(name)) return void problems.add(path, "is not a valid build name (letters, digits, _ and - only)");
  if (name.length > MAX_BUILD_NAME_CHARS) return void problems.add(path, `is a build name longer than ${MAX_BUILD_NAME_CHARS} characters`);
  const build = mapping(raw ?? {}, path, problems);
  if (!build) return undefined;
  checkKeys(build, path, buildKeys, problems);

  const contextValue = field(build, "context");
  if (contextValue === undefined) problems.add([...path, "context"], "is required");
  const contextPath = contextValue === undefined ? undefined : safeRelativePath(contextValue, [...path, "context"], problems);

  const dockerfileValue = field(build, "dockerfile");
  const dockerfile = dockerfileValue === undefined ? "Dockerfile" : safeRelativePath(dockerfileValue, [...path, "dockerfile"], problems);
  if (dockerfile === ".") problems.add([...path, "dockerfile"], "must name a file");

  const platforms = parsePlatforms(build, path, problems);
  const machineValue = field(build, "machine");
  const machine = machineValue === undefined ? DEFAULT_MACHINE : oneOf(machineValue, [...path, "machine"], machineSizes, problems);
  const timeout = timeoutSeconds(field(build, "timeout"), [...path, "timeout"], problems) ?? DEFAULT_TIMEOUT_SECONDS;
  const buildArgs = textMap(field(build, "build_args"), [...path, "build_args"], reading);
  const cacheFrom = stringList(field(build, "cache_from"), [...path, "cache_from"], reading, MAX_PATH_CHARS);

  if (contextPath === undefined || dockerfile === undefined || dockerfile === "." || !platforms || !machine) return undefined;
  const dockerfilePath = contextPath === "." ? dockerfile : `${contextPath}/${dockerfile}`;
  if (dockerfilePath.length > MAX_PATH_CHARS) return void problems.add([...path, "dockerfile"], `makes a path longer than ${MAX_PATH_CHARS} characters with the context`);
  const common = { context_path: contextPath, dockerfile_path: dockerfilePath, machine, timeout_seconds: timeout, build_args: buildArgs, cache_from: cacheFrom };
  return {
    name,
    ...common,
    platforms,
    jobs: platforms.map((platform) => {
      const architecture = platform === "linux/amd64" ? "amd64" : "arm64";
      return { name: `${name}_${architecture}`, build: name, architecture, platform, ...common, build_args: { ...buildArgs }, cache_from: [...cacheFrom] };
    }),
  };
}

function parseBuilds(value: unknown, reading: Reading): BuildSpec[] {
  const { problems } = reading;
  if (value === undefined) {
    problems.add(["builds"], "is required");
    return [];
  }
  const builds = mapping(value, ["builds"], problems);
  if (!builds) return [];
  const names = Object.keys(builds);
  if (names.length === 0) problems.add(["builds"], "must list at least one build");
  if (names.length > MAX_BUILDS) {
    problems.add(["builds"], `has ${names.length} builds; at most ${MAX_BUILDS} are allowed`);
    return [];
  }
  const out: BuildSpec[] = [];
  for (const name of names) {
    const build = parseBuild(name, builds[name], reading);
    if (build) out.push(build);
  }
  return out;
}

/** A few names for a message: at most eight, then `…`. */
function someNames(names: string[]): string {
  return names.length > 8 ? `${names.slice(0, 8).join(", ")}, …` : names.join(", ");
}

/** A service named in `preview`: it must be a service of the compose file (when there is one to check against). */
function composeService(value: unknown, path: Path, reading: Reading, compose: ComposeFile | null): string | undefined {
  const { problems } = reading;
  if (value === undefined) return void problems.add(path, "is required");
  const service = nonEmptyString(value, path, problems);
  if (service === undefined) return undefined;
  if (!composeServiceName.test(service)) return void problems.add(path, "is not a valid compose service name");
  if (!compose) return service;
  if (compose.services.some((s) => s.name === service)) return service;
  problems.add(path, `is not a service of ${compose.path} (its services: ${someNames(compose.services.map((s) => s.name))})`);
  return undefined;
}

type Expose = StagelyConfig["preview"]["expose"];
type Route = StagelyConfig["preview"]["routes"][number];

/** A mapping under preview (expose, a route) with only the keys it may have. */
function previewTarget(value: unknown, path: Path, problems: Problems, keys: readonly string[]): Mapping | undefined {
  const target = mapping(value === null ? {} : value, path, problems);
  if (target) checkKeys(target, path, keys, problems);
  return target;
}

function targetPort(target: Mapping, path: Path, problems: Problems): number | undefined {
  const value = field(target, "port");
  if (value !== undefined) return portNumber(value, [...path, "port"], problems);
  problems.add([...path, "port"], "is required");
  return undefined;
}

/** preview.expose as written, or the only service of the compose file that publishes a TCP port. */
function parseExpose(value: unknown, reading: Reading, compose: ComposeFile | null): Expose | undefined {
  const { problems } = reading;
  const path: Path = ["preview", "expose"];
  if (value !== undefined) {
    const target = previewTarget(value, path, problems, ["service", "port"]);
    if (!target) return undefined;
    const service = composeService(field(target, "service"), [...path, "service"], reading, compose);
    const port = targetPort(target, path, problems);
    return service === undefined || port === undefined ? undefined : { service, port };
  }
  if (!compose) return undefined;
  const publishing = compose.services
    .map((s) => ({
      name: s.name,
      ports: [...new Set(s.ports.filter((p) => p.protocol === "tcp").map((p) => (p.target === p.targetEnd ? `${p.target}` : `${p.target}-${p.targetEnd}`)))],
    }))
    .filter((s) => s.ports.length > 0);
  const [only] = publishing;
  if (!only) {
    return void problems.add(path, `is required: no service of ${compose.path} publishes a TCP port (ports:); set it to {service: <a service>, port: <its container port>}`);
  }
  const example = `{service: ${only.name}, port: ${Number.parseInt(only.ports[0]!, 10)}}`;
  if (publishing.length > 1) {
    const choices = someNames(publishing.map((s) => `${s.name}: ${s.ports.join(", ")}`));
    return void problems.add(path, `is required: several services of ${compose.path} publish ports (${choices}); set it to one of them, e.g. ${example}`);
  }
  if (only.ports.length > 1 || only.ports[0]!.includes("-")) {
    return void problems.add(path, `is required: ${only.name} publishes several ports in ${compose.path} (${only.ports.join(", ")}); set it to one, e.g. ${example}`);
  }
  return { service: only.name, port: Number(only.ports[0]) };
}

function parseRoutes(value: unknown, reading: Reading, compose: ComposeFile | null): Route[] {
  const { problems } = reading;
  const path: Path = ["preview", "routes"];
  const items = list(value, path, problems) ?? [];
  if (items.length > MAX_ROUTES) {
    problems.add(path, `has ${items.length} routes; at most ${MAX_ROUTES} are allowed`);
    return [];
  }
  const routes: Route[] = [];
  items.forEach((raw, index) => {
    const at: Path = [...path, index];
    const route = previewTarget(raw, at, problems, ["name", "service", "port"]);
    if (!route) return;
    const nameValue = field(route, "name");
    let name: string | undefined;
    if (nameValue === undefined) problems.add([...at, "name"], "is required");
    else if (typeof nameValue !== "string" || !routeName.test(nameValue) || nameValue === "xn") {
      problems.add([...at, "name"], "must be lowercase letters and digits, with single hyphens between them (a DNS label, not xn)");
    } else if (nameValue.length > MAX_ROUTE_NAME_CHARS) {
      problems.add([...at, "name"], `is longer than ${MAX_ROUTE_NAME_CHARS} characters (the host <name>--<hash> must fit in 63)`);
    } else if (routes.some((r) => r.name === nameValue)) {
      problems.add([...at, "name"], `repeats the route name ${nameValue}`);
    } else name = nameValue;
    const service = composeService(field(route, "service"), [...at, "service"], reading, compose);
    const port = targetPort(route, at, problems);
    if (name !== undefined && service !== undefined && port !== undefined) routes.push({ name, service, port });
  });
  return routes;
}

function parsePreview(value: unknown, context: StagelyYamlContext, reading: Reading): StagelyConfig["preview"] | undefined {
  const { problems } = reading;
  const preview = mapping(value, ["preview"], problems) ?? {};
  checkKeys(preview, ["preview"], ["size", "expose", "routes", "lifecycle"], problems);
  const sizeValue = field(preview, "size");
  const size = (sizeValue === undefined ? context.defaultPreviewSize : oneOf(sizeValue, ["preview", "size"], machineSizes, problems)) ?? DEFAULT_MACHINE;
  const expose = parseExpose(field(preview, "expose"), reading, context.compose);
  const routes = parseRoutes(field(preview, "routes"), reading, context.compose);

  const lifecyclePath: Path = ["preview", "lifecycle"];
  const lifecycle = mapping(field(preview, "lifecycle"), lifecyclePath, problems) ?? {};
  checkKeys(lifecycle, lifecyclePath, ["on_start"], problems);
  const onStart: { service: string; command: string }[] = [];
  const steps = list(field(lifecycle, "on_start"), [...lifecyclePath, "on_start"], problems) ?? [];
  steps.forEach((raw, index) => {
    const path: Path = [...lifecyclePath, "on_start", index];
    const step = mapping(raw === null ? {} : raw, path, problems);
    if (!step) return;
    checkKeys(step, path, ["service", "command"], problems);
    const service = composeService(field(step, "service"), [...path, "service"], reading, context.compose);
    const commandValue = field(step, "command");
    if (commandValue === undefined) problems.add([...path, "command"], "is required");
    const command = commandValue === undefined ? undefined : nonEmptyString(commandValue, [...path, "command"], problems);
    if (service !== undefined && command !== undefined) onStart.push({ service, command: substitute(command, [...path, "command"], reading) });
  });
  return expose ? { size, expose, routes, lifecycle: { on_start: onStart } } : undefined;
}

function parseTest(value: unknown, reading: Reading): StagelyConfig["test"] {
  const { problems } = reading;
  const test = mapping(value, ["test"], problems) ?? {};
  checkKeys(test, ["test"], ["enabled", "image", "commands", "env", "timeout"], problems);
  const enabledValue = field(test, "enabled");
  if (enabledValue !== undefined && typeof enabledValue !== "boolean") problems.add(["test", "enabled"], "must be true or false");
  const enabled = enabledValue === true;

  const imageValue = field(test, "image");
  let image: string | null = null;
  if (imageValue !== undefined) {
    const text = nonEmptyString(imageValue, ["test", "image"], problems, MAX_PATH_CHARS);
    if (text !== undefined && /\s/.test(text)) problems.add(["test", "image"], "must be an image reference without spaces");
    else if (text !== undefined) image = text;
  } else if (enabled) problems.add(["test", "image"], "is required when test.enabled is true");

  const commandsValue = field(test, "commands");
  const commands = stringList(commandsValue, ["test", "commands"], reading);
  const noCommands = commandsValue === undefined || (Array.isArray(commandsValue) && commandsValue.length === 0);
  if (enabled && noCommands) problems.add(["test", "commands"], "must list at least one command when test.enabled is true");
  const env = textMap(field(test, "env"), ["test", "env"], reading);
  const timeout = timeoutSeconds(field(test, "timeout"), ["test", "timeout"], problems) ?? DEFAULT_TIMEOUT_SECONDS;
  return { enabled, image, commands, env, timeout_seconds: timeout };
}

/**
 * Parses and validates stagely.yaml, fills in defaults, substitutes variables, resolves the services `preview` names
 * against the compose file and expands every build into one job per platform. All problems are reported at once
 * (at most MAX_PROBLEMS, then a count of the rest).
 */
export function parseStagelyYaml(text: string, context: StagelyYamlContext): StagelyYamlResult {
  const read = readBoundedYaml(text, "stagely.yaml", { ...DEFAULT_YAML_LIMITS, maxBytes: STAGELY_YAML_MAX_BYTES });
  if (!read.ok) return read;
  const root = read.value;
  if (root === null) return { ok: false, errors: ["stagely.yaml: is empty; it needs at least version: 2 and builds"] };
  if (!isMapping(root)) return { ok: false, errors: ["stagely.yaml: must be a mapping with version and builds at the top level"] };

  const variables: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of stagelyVariables) variables[name] = String(context.variables[name]);
  const reading: Reading = { problems: new Problems("stagely.yaml"), variables, textOf: read.textOf, substituted: 0 };
  const { problems } = reading;

  checkKeys(root, [], ["version", "builds", "preview", "test"], problems);
  const version = field(root, "version");
  if (version === undefined) problems.add(["version"], "is required");
  else if (version !== 2 && version !== "2") problems.add(["version"], "must be 2");

  const builds = parseBuilds(field(root, "builds"), reading);
  const preview = parsePreview(field(root, "preview"), context, reading);
  const test = parseTest(field(root, "test"), reading);

  if (problems.count > 0 || !preview || !context.compose) return { ok: false, errors: problems.summary() };
  const config: StagelyConfig = { version: 2, builds, preview, test };
  const size = new TextEncoder().encode(JSON.stringify(config)).length;
  if (size > MAX_RUN_CONFIG_BYTES) {
    return { ok: false, errors: [`stagely.yaml: makes a configuration of ${Math.ceil(size / 1024)} KiB; at most ${MAX_RUN_CONFIG_BYTES / 1024} KiB is stored with a run`] };
  }
  return { ok: true, config };
}
