import { parseDocument } from "yaml";
import { z } from "zod";
import { machineSizes } from "../db/schema.ts";

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
 *   booleans are accepted as values and stored as their text.
 * - YAML anchors, aliases and merge keys (`<<: *defaults`) work, bounded against alias bombs; input is limited to 64 KiB.
 */

export const STAGELY_YAML_MAX_BYTES = 64 * 1024;
export const MAX_BUILDS = 32;
export const MIN_TIMEOUT_SECONDS = 1;
export const MAX_TIMEOUT_SECONDS = 6 * 60 * 60;
/** More errors than this are summarized in one last line. */
export const MAX_ERRORS = 50;
/** Aliases a document may expand (the `yaml` package's own default); an alias bomb stops here. */
const MAX_ALIAS_COUNT = 100;

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
}

const DEFAULT_MACHINE: MachineSize = "medium";
const DEFAULT_TIMEOUT_SECONDS = 30 * 60;

// ---- The normalized output: the snapshot stored on workflow_runs.config ----

const machineSize = z.enum(machineSizes);
const relativePath = z.string().min(1);
const stringMap = z.record(z.string(), z.string());
const seconds = z.number().int().min(MIN_TIMEOUT_SECONDS).max(MAX_TIMEOUT_SECONDS);

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

type Path = (string | number)[];
type Mapping = Record<string, unknown>;

const identifier = /^[A-Za-z0-9_-]+$/;
const buildName = /^[a-zA-Z0-9_-]+$/;
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const serviceName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function formatPath(path: Path): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (identifier.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment.length > 60 ? `${segment.slice(0, 60)}…` : segment)}]`;
  }
  return out;
}

class Problems {
  private readonly seen = new Set<string>();
  readonly list: string[] = [];

  add(path: Path, message: string): void {
    const line = path.length ? `stagely.yaml: ${formatPath(path)} ${message}` : `stagely.yaml: ${message}`;
    if (this.seen.has(line)) return;
    this.seen.add(line);
    this.list.push(line);
  }
}

function isMapping(value: unknown): value is Mapping {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
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

function nonEmptyString(value: unknown, path: Path, problems: Problems): string | undefined {
  if (typeof value !== "string") {
    problems.add(path, "must be a string");
    return undefined;
  }
  if (value.trim() === "") {
    problems.add(path, "must not be empty");
    return undefined;
  }
  return value;
}

function oneOf<T extends string>(value: unknown, path: Path, allowed: readonly T[], problems: Problems): T | undefined {
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  problems.add(path, `must be ${allowed.length === 2 ? allowed.join(" or ") : `one of ${allowed.join(", ")}`}`);
  return undefined;
}

/** A repository-relative path, normalized; undefined (and a problem) when unsafe. */
function safeRelativePath(value: unknown, path: Path, problems: Problems): string | undefined {
  const text = nonEmptyString(value, path, problems);
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

function substitute(text: string, path: Path, variables: Record<string, string>, problems: Problems): string {
  return text.replace(/\$\$\{|\$\{([^}]*)(\})?/g, (match, name: string | undefined, close: string | undefined) => {
    if (match === "$${") return "${";
    if (close === undefined) {
      problems.add(path, "has a ${ without a closing }");
      return match;
    }
    const value = Object.hasOwn(variables, name!) ? variables[name!] : undefined;
    if (value === undefined) {
      const shown = name!.length > 40 ? `${name!.slice(0, 40)}…` : name!;
      problems.add(path, `uses unknown variable \${${shown}} (known: ${stagelyVariables.join(", ")}; write $\${ for a literal \${)`);
      return match;
    }
    return value;
  });
}

/** A mapping of names to text values (build_args, test.env), with variables substituted. */
function textMap(value: unknown, path: Path, variables: Record<string, string>, problems: Problems): Record<string, string> {
  const map = mapping(value, path, problems);
  const entries: [string, string][] = [];
  for (const [key, raw] of Object.entries(map ?? {})) {
    if (!envName.test(key)) {
      problems.add([...path, key], "is not a valid name (letters, digits and _, not starting with a digit)");
      continue;
    }
    let text: string;
    if (typeof raw === "string") text = raw;
    else if ((typeof raw === "number" && Number.isFinite(raw)) || typeof raw === "boolean") text = String(raw);
    else {
      problems.add([...path, key], "must be a string, number or boolean");
      continue;
    }
    entries.push([key, substitute(text, [...path, key], variables, problems)]);
  }
  // fromEntries defines own properties, so even a key named __proto__ stays plain data.
  return Object.fromEntries(entries);
}

/** A list of non-empty strings, variables substituted when `variables` is given. */
function stringList(value: unknown, path: Path, problems: Problems, variables?: Record<string, string>): string[] {
  const items = list(value, path, problems) ?? [];
  const out: string[] = [];
  items.forEach((item, index) => {
    const text = nonEmptyString(item === null ? undefined : item, [...path, index], problems);
    if (text !== undefined) out.push(variables ? substitute(text, [...path, index], variables, problems) : text);
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

function parseBuild(name: string, raw: unknown, variables: Record<string, string>, problems: Problems): BuildSpec | undefined {
  const path: Path = ["builds", name];
  if (!buildName.test(name)) {
    problems.add(path, "is not a valid build name (letters, digits, _ and - only)");
    return undefined;
  }
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
  const buildArgs = textMap(field(build, "build_args"), [...path, "build_args"], variables, problems);
  const cacheFrom = stringList(field(build, "cache_from"), [...path, "cache_from"], problems, variables);

  if (contextPath === undefined || dockerfile === undefined || dockerfile === "." || !platforms || !machine) return undefined;
  const dockerfilePath = contextPath === "." ? dockerfile : `${contextPath}/${dockerfile}`;
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

function parseBuilds(value: unknown, variables: Record<string, string>, problems: Problems): BuildSpec[] {
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
    const build = parseBuild(name, builds[name], variables, problems);
    if (build) out.push(build);
  }
  return out;
}

function parsePreview(value: unknown, context: StagelyYamlContext, variables: Record<string, string>, problems: Problems): StagelyConfig["preview"] {
  const preview = mapping(value, ["preview"], problems) ?? {};
  checkKeys(preview, ["preview"], ["size", "lifecycle"], problems);
  const sizeValue = field(preview, "size");
  const size = (sizeValue === undefined ? context.defaultPreviewSize : oneOf(sizeValue, ["preview", "size"], machineSizes, problems)) ?? DEFAULT_MACHINE;

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
    const serviceValue = field(step, "service");
    const commandValue = field(step, "command");
    if (serviceValue === undefined) problems.add([...path, "service"], "is required");
    if (commandValue === undefined) problems.add([...path, "command"], "is required");
    let service = serviceValue === undefined ? undefined : nonEmptyString(serviceValue, [...path, "service"], problems);
    if (service !== undefined && !serviceName.test(service)) {
      problems.add([...path, "service"], "is not a valid compose service name");
      service = undefined;
    }
    const command = commandValue === undefined ? undefined : nonEmptyString(commandValue, [...path, "command"], problems);
    if (service !== undefined && command !== undefined) onStart.push({ service, command: substitute(command, [...path, "command"], variables, problems) });
  });
  return { size, lifecycle: { on_start: onStart } };
}

function parseTest(value: unknown, variables: Record<string, string>, problems: Problems): StagelyConfig["test"] {
  const test = mapping(value, ["test"], problems) ?? {};
  checkKeys(test, ["test"], ["enabled", "image", "commands", "env", "timeout"], problems);
  const enabledValue = field(test, "enabled");
  if (enabledValue !== undefined && typeof enabledValue !== "boolean") problems.add(["test", "enabled"], "must be true or false");
  const enabled = enabledValue === true;

  const imageValue = field(test, "image");
  let image: string | null = null;
  if (imageValue !== undefined) {
    const text = nonEmptyString(imageValue, ["test", "image"], problems);
    if (text !== undefined && /\s/.test(text)) problems.add(["test", "image"], "must be an image reference without spaces");
    else if (text !== undefined) image = text;
  } else if (enabled) problems.add(["test", "image"], "is required when test.enabled is true");

  const commandsValue = field(test, "commands");
  const commands = stringList(commandsValue, ["test", "commands"], problems, variables);
  const noCommands = commandsValue === undefined || (Array.isArray(commandsValue) && commandsValue.length === 0);
  if (enabled && noCommands) problems.add(["test", "commands"], "must list at least one command when test.enabled is true");
  const env = textMap(field(test, "env"), ["test", "env"], variables, problems);
  const timeout = timeoutSeconds(field(test, "timeout"), ["test", "timeout"], problems) ?? DEFAULT_TIMEOUT_SECONDS;
  return { enabled, image, commands, env, timeout_seconds: timeout };
}

function readYaml(text: string, problems: Problems): unknown {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, merge: true, logLevel: "error" });
  if (doc.errors.length > 0) {
    const seen = new Set<string>();
    for (const error of doc.errors) {
      if (seen.has(error.code)) continue;
      seen.add(error.code);
      const at = lineAndColumn(text, error.pos[0]);
      problems.add([], `is not valid YAML (line ${at.line}, column ${at.column}): ${error.message}`);
    }
    return undefined;
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    if (error instanceof ReferenceError && /alias/i.test(error.message)) problems.add([], "uses too many YAML aliases");
    else problems.add([], "could not be read as YAML");
    return undefined;
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, offset));
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).length;
}

/**
 * Parses and validates stagely.yaml, fills in defaults, substitutes variables and expands every build into one job
 * per platform. All problems are reported at once (at most MAX_ERRORS, then a count of the rest).
 */
export function parseStagelyYaml(text: string, context: StagelyYamlContext): StagelyYamlResult {
  const problems = new Problems();
  if (typeof text !== "string") return { ok: false, errors: ["stagely.yaml: is not text"] };
  // Every UTF-16 unit is at least one UTF-8 byte, so a long string is rejected before it is encoded.
  if (text.length > STAGELY_YAML_MAX_BYTES || byteLength(text) > STAGELY_YAML_MAX_BYTES) {
    return { ok: false, errors: [`stagely.yaml: is larger than ${STAGELY_YAML_MAX_BYTES / 1024} KiB`] };
  }
  const root = readYaml(text, problems);
  if (problems.list.length > 0) return { ok: false, errors: problems.list };
  if (root === undefined || root === null) return { ok: false, errors: ["stagely.yaml: is empty; it needs at least version: 2 and builds"] };
  if (!isMapping(root)) return { ok: false, errors: ["stagely.yaml: must be a mapping with version and builds at the top level"] };

  checkKeys(root, [], ["version", "builds", "preview", "test"], problems);
  const version = field(root, "version");
  if (version === undefined) problems.add(["version"], "is required");
  else if (version !== 2 && version !== "2") problems.add(["version"], "must be 2");

  const variables: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of stagelyVariables) variables[name] = String(context.variables[name]);

  const builds = parseBuilds(field(root, "builds"), variables, problems);
  const preview = parsePreview(field(root, "preview"), context, variables, problems);
  const test = parseTest(field(root, "test"), variables, problems);

  if (problems.list.length > 0) {
    const errors = problems.list;
    if (errors.length <= MAX_ERRORS) return { ok: false, errors };
    return { ok: false, errors: [...errors.slice(0, MAX_ERRORS), `stagely.yaml: ${errors.length - MAX_ERRORS} more errors not shown`] };
  }
  return { ok: true, config: { version: 2, builds, preview, test } };
}
