import { describe, expect, it } from "vitest";
import { MAX_PROBLEMS } from "./bounded-yaml.ts";
import { parseComposeFile, type ComposeFile } from "./compose-file.ts";
import {
  buildJobsOf,
  MAX_BUILD_NAME_CHARS,
  MAX_BUILDS,
  MAX_PATH_CHARS,
  MAX_RUN_CONFIG_BYTES,
  MAX_VALUE_CHARS,
  parseGoDuration,
  parseStagelyYaml,
  stagelyConfigSchema,
  STAGELY_YAML_MAX_BYTES,
  type StagelyConfig,
  type StagelyYamlContext,
} from "./stagely-yaml.ts";

function composeOf(text: string): ComposeFile {
  const parsed = parseComposeFile(text, "docker-compose.yml");
  if (!parsed.ok) throw new Error(parsed.errors.join("\n"));
  return parsed.file;
}

/** api publishes 8080 (so it is exposed by default), db publishes nothing. */
const compose = composeOf('services:\n  api: {build: ./api, ports: ["8080:8080"]}\n  db: {image: "postgres:16"}\n');

const context: StagelyYamlContext = {
  compose,
  defaultPreviewSize: "small",
  variables: {
    STAGELY_HASH: "k3j5h2g4f6d8s0a1",
    STAGELY_PREVIEW_URL: "https://k3j5h2g4f6d8s0a1.preview.example.com",
    COMMIT_HASH: "0123456789abcdef0123456789abcdef01234567",
    BRANCH: "feature/login",
    PR_NUMBER: 42,
    PROJECT_ID: "prj_0123456789abcdef",
  },
};

const specExample = `
version: 2                      # required, must be 2
builds:                         # required, at least one; names match ^[a-zA-Z0-9_-]+$
  api:
    context: ./api              # required, relative, no "..", not absolute
    dockerfile: Dockerfile      # default <context>/Dockerfile
    platform: linux/amd64       # or platforms: [linux/amd64, linux/arm64] (exactly one of the two)
    machine: medium             # small|medium|large|xlarge, default medium
    build_args: {COMMIT_SHA: "\${COMMIT_HASH}"}
    cache_from: []
    timeout: 20m                # Go-style duration, default 30m
preview:
  size: large                   # small|medium|large|xlarge, default: the project's default_preview_size
  lifecycle:
    on_start: [{service: api, command: "npm run db:migrate"}]
test:                           # optional
  enabled: false
  image: mcr.microsoft.com/playwright:v1.40.0
  commands: ["npx playwright test"]
  env: {BASE_URL: "\${STAGELY_PREVIEW_URL}"}
  timeout: 30m
`;

function valid(text: string, ctx = context): StagelyConfig {
  const result = parseStagelyYaml(text, ctx);
  if (!result.ok) throw new Error(`expected a valid stagely.yaml, got:\n${result.errors.join("\n")}`);
  return result.config;
}

function errorsOf(text: string): string[] {
  const result = parseStagelyYaml(text, context);
  if (result.ok) throw new Error("expected errors, got a valid config");
  return result.errors;
}

/** A minimal valid file with one build whose body is `buildBody` (indented by 4). */
const withBuild = (buildBody: string, rest = "") => `version: 2\nbuilds:\n  api:\n${buildBody.replace(/^/gm, "    ")}\n${rest}`;

describe("parseStagelyYaml: the spec's example", () => {
  it("parses to the normalized snapshot, one job per platform", () => {
    const config = valid(specExample);
    expect(config).toEqual({
      version: 2,
      builds: [
        {
          name: "api",
          context_path: "api",
          dockerfile_path: "api/Dockerfile",
          platforms: ["linux/amd64"],
          machine: "medium",
          timeout_seconds: 1200,
          build_args: { COMMIT_SHA: "0123456789abcdef0123456789abcdef01234567" },
          cache_from: [],
          jobs: [
            {
              name: "api_amd64",
              build: "api",
              architecture: "amd64",
              platform: "linux/amd64",
              context_path: "api",
              dockerfile_path: "api/Dockerfile",
              machine: "medium",
              timeout_seconds: 1200,
              build_args: { COMMIT_SHA: "0123456789abcdef0123456789abcdef01234567" },
              cache_from: [],
            },
          ],
        },
      ],
      preview: {
        size: "large",
        expose: { service: "api", port: 8080 },
        routes: [],
        lifecycle: { on_start: [{ service: "api", command: "npm run db:migrate" }] },
      },
      test: {
        enabled: false,
        image: "mcr.microsoft.com/playwright:v1.40.0",
        commands: ["npx playwright test"],
        env: { BASE_URL: "https://k3j5h2g4f6d8s0a1.preview.example.com" },
        timeout_seconds: 1800,
      },
    });
  });

  it("is JSON-serializable and satisfies the exported snapshot schema", () => {
    const config = valid(specExample);
    const roundTripped = JSON.parse(JSON.stringify(config)) as unknown;
    expect(roundTripped).toEqual(config);
    expect(stagelyConfigSchema.parse(roundTripped)).toEqual(config);
  });

  it("expands platforms into one job per architecture, in order, named <build>_<arch>", () => {
    const config = valid(`
version: 2
builds:
  web:
    context: web
    platforms: [linux/arm64, linux/amd64]
    machine: large
  worker:
    context: .
    platform: linux/arm64
`);
    expect(buildJobsOf(config).map((j) => [j.name, j.architecture, j.platform, j.machine, j.context_path, j.dockerfile_path])).toEqual([
      ["web_arm64", "arm64", "linux/arm64", "large", "web", "web/Dockerfile"],
      ["web_amd64", "amd64", "linux/amd64", "large", "web", "web/Dockerfile"],
      ["worker_arm64", "arm64", "linux/arm64", "medium", ".", "Dockerfile"],
    ]);
    expect(config.builds.map((b) => b.name)).toEqual(["web", "worker"]);
  });
});

describe("parseStagelyYaml: defaults", () => {
  const minimal = "version: 2\nbuilds:\n  api:\n    context: ./api\n    platform: linux/amd64\n";

  it("fills every default", () => {
    const config = valid(minimal);
    expect(config.builds[0]).toMatchObject({
      dockerfile_path: "api/Dockerfile",
      machine: "medium",
      timeout_seconds: 1800,
      build_args: {},
      cache_from: [],
    });
    expect(config.preview).toEqual({ size: "small", expose: { service: "api", port: 8080 }, routes: [], lifecycle: { on_start: [] } });
    expect(config.test).toEqual({ enabled: false, image: null, commands: [], env: {}, timeout_seconds: 1800 });
  });

  it("takes the preview size from the project when preview.size is not given", () => {
    expect(valid(minimal, { ...context, defaultPreviewSize: "xlarge" }).preview.size).toBe("xlarge");
    expect(valid(`${minimal}preview:\n  size: medium\n`, { ...context, defaultPreviewSize: "xlarge" }).preview.size).toBe("medium");
  });

  it("treats an empty value as not given", () => {
    const config = valid(`${minimal.replace("platform: linux/amd64", "platform: linux/amd64\n    cache_from:\n    machine:")}preview:\ntest:\n`);
    expect(config.builds[0]).toMatchObject({ machine: "medium", cache_from: [] });
    expect(config.test.enabled).toBe(false);
  });

  it("normalizes paths: no ./, no duplicate or trailing slashes, dockerfile relative to the context", () => {
    const cases: [string, string | undefined, string, string][] = [
      ["./api", undefined, "api", "api/Dockerfile"],
      ["./api/", "./Dockerfile", "api", "api/Dockerfile"],
      ["services//api/.", "docker/Dockerfile.prod", "services/api", "services/api/docker/Dockerfile.prod"],
      [".", undefined, ".", "Dockerfile"],
      ["./", "./build/Dockerfile", ".", "build/Dockerfile"],
    ];
    for (const [contextPath, dockerfile, expectedContext, expectedDockerfile] of cases) {
      const body = `context: "${contextPath}"\nplatform: linux/amd64${dockerfile ? `\ndockerfile: "${dockerfile}"` : ""}`;
      expect(valid(withBuild(body)).builds[0]).toMatchObject({ context_path: expectedContext, dockerfile_path: expectedDockerfile });
    }
  });

  it("accepts version given as the string \"2\"", () => {
    expect(valid(minimal.replace("version: 2", 'version: "2"')).version).toBe(2);
  });

  it("accepts numbers and booleans as build_args and env values, stored as text", () => {
    const config = valid(withBuild("context: .\nplatform: linux/amd64\nbuild_args: {PORT: 8080, DEBUG: true, RATIO: 0.5}", "test:\n  env: {RETRIES: 3}\n"));
    expect(config.builds[0]!.build_args).toEqual({ PORT: "8080", DEBUG: "true", RATIO: "0.5" });
    expect(config.test.env).toEqual({ RETRIES: "3" });
  });

  it("supports anchors, aliases and merge keys", () => {
    const config = valid(`
version: 2
builds:
  api: &base
    context: api
    platform: linux/amd64
    machine: large
    build_args: &args {SHA: "\${COMMIT_HASH}"}
  web:
    <<: *base
    context: web
    build_args: *args
`);
    expect(config.builds.map((b) => [b.name, b.context_path, b.machine, b.build_args.SHA])).toEqual([
      ["api", "api", "large", context.variables.COMMIT_HASH],
      ["web", "web", "large", context.variables.COMMIT_HASH],
    ]);
  });
});

describe("parseStagelyYaml: errors name the path", () => {
  const cases: [string, string, string[]][] = [
    ["not YAML", "version: 2\nbuilds: [unclosed\n  api: {}", [
      "stagely.yaml: is not valid YAML (line 2, column 10): Implicit keys of flow sequence pairs need to be on a single line",
      "stagely.yaml: is not valid YAML (line 3, column 10): Flow sequence in block collection must be sufficiently indented and end with a ]",
    ]],
    ["a duplicate key", "version: 2\nversion: 2\n", ['stagely.yaml: has the key "version" more than once']],
    ["build names that are the same as keys", "version: 2\nbuilds:\n  1: {context: ., platform: linux/amd64}\n  '1': {context: ., platform: linux/amd64}\n", ['stagely.yaml: builds has the key "1" more than once']],
    ["an empty file", "# nothing yet\n", ["stagely.yaml: is empty; it needs at least version: 2 and builds"]],
    ["a list at the root", "- version: 2\n", ["stagely.yaml: must be a mapping with version and builds at the top level"]],
    ["a scalar at the root", "hello", ["stagely.yaml: must be a mapping with version and builds at the top level"]],
    ["no version, no builds", "preview:\n  size: small\n", ["stagely.yaml: version is required", "stagely.yaml: builds is required"]],
    ["version 1", "version: 1\nbuilds: {api: {context: ., platform: linux/amd64}}", ["stagely.yaml: version must be 2"]],
    ["version 2.0", "version: 2.1\nbuilds: {api: {context: ., platform: linux/amd64}}", ["stagely.yaml: version must be 2"]],
    ["no builds", "version: 2\nbuilds: {}\n", ["stagely.yaml: builds must list at least one build"]],
    ["builds as a list", "version: 2\nbuilds: [api]\n", ["stagely.yaml: builds must be a mapping"]],
    ["a bad build name", "version: 2\nbuilds:\n  my app:\n    context: .\n    platform: linux/amd64\n", ['stagely.yaml: builds["my app"] is not a valid build name (letters, digits, _ and - only)']],
    ["a build with no body", "version: 2\nbuilds:\n  api:\n", ["stagely.yaml: builds.api.context is required", "stagely.yaml: builds.api needs platform or platforms"]],
    ["a build that is a string", "version: 2\nbuilds:\n  api: ./api\n", ["stagely.yaml: builds.api must be a mapping"]],
    ["no context", withBuild("platform: linux/amd64"), ["stagely.yaml: builds.api.context is required"]],
    ["an absolute context", withBuild("context: /srv/api\nplatform: linux/amd64"), ["stagely.yaml: builds.api.context must be a relative path"]],
    ["a Windows context", withBuild('context: "C:/api"\nplatform: linux/amd64'), ["stagely.yaml: builds.api.context must be a relative path"]],
    ["a context with ..", withBuild("context: api/../../etc\nplatform: linux/amd64"), ['stagely.yaml: builds.api.context must not contain ".."']],
    ["a context with backslashes", withBuild('context: "api\\\\web"\nplatform: linux/amd64'), ["stagely.yaml: builds.api.context must use / to separate folders"]],
    ["an empty context", withBuild('context: ""\nplatform: linux/amd64'), ["stagely.yaml: builds.api.context must not be empty"]],
    ["a context that is a number", withBuild("context: 3\nplatform: linux/amd64"), ["stagely.yaml: builds.api.context must be a string"]],
    ["a dockerfile with ..", withBuild("context: api\ndockerfile: ../Dockerfile\nplatform: linux/amd64"), ['stagely.yaml: builds.api.dockerfile must not contain ".."']],
    ["an absolute dockerfile", withBuild("context: api\ndockerfile: /Dockerfile\nplatform: linux/amd64"), ["stagely.yaml: builds.api.dockerfile must be a relative path"]],
    ["a dockerfile that is a folder", withBuild("context: api\ndockerfile: ./\nplatform: linux/amd64"), ["stagely.yaml: builds.api.dockerfile must name a file"]],
    ["neither platform nor platforms", withBuild("context: ."), ["stagely.yaml: builds.api needs platform or platforms"]],
    ["both platform and platforms", withBuild("context: .\nplatform: linux/amd64\nplatforms: [linux/arm64]"), ["stagely.yaml: builds.api has both platform and platforms; set only one"]],
    ["an unknown platform", withBuild("context: .\nplatform: windows/amd64"), ["stagely.yaml: builds.api.platform must be linux/amd64 or linux/arm64"]],
    ["platform as a list", withBuild("context: .\nplatform: [linux/amd64]"), ["stagely.yaml: builds.api.platform must be linux/amd64 or linux/arm64"]],
    ["empty platforms", withBuild("context: .\nplatforms: []"), ["stagely.yaml: builds.api.platforms must list at least one platform"]],
    ["platforms as a string", withBuild("context: .\nplatforms: linux/amd64"), ["stagely.yaml: builds.api.platforms must be a list"]],
    ["an unknown entry in platforms", withBuild("context: .\nplatforms: [linux/amd64, linux/386]"), ["stagely.yaml: builds.api.platforms[1] must be linux/amd64 or linux/arm64"]],
    ["a repeated platform", withBuild("context: .\nplatforms: [linux/arm64, linux/arm64]"), ["stagely.yaml: builds.api.platforms[1] repeats linux/arm64"]],
    ["an unknown machine", withBuild("context: .\nplatform: linux/amd64\nmachine: huge"), ["stagely.yaml: builds.api.machine must be one of small, medium, large, xlarge"]],
    ["a timeout without a unit", withBuild("context: .\nplatform: linux/amd64\ntimeout: 90"), ["stagely.yaml: builds.api.timeout must be a duration like 90s, 20m or 1h30m"]],
    ["a timeout in days", withBuild("context: .\nplatform: linux/amd64\ntimeout: 1d"), ["stagely.yaml: builds.api.timeout must be a duration like 90s, 20m or 1h30m"]],
    ["a negative timeout", withBuild("context: .\nplatform: linux/amd64\ntimeout: -5m"), ["stagely.yaml: builds.api.timeout must be a duration like 90s, 20m or 1h30m"]],
    ["a timeout over 6h", withBuild("context: .\nplatform: linux/amd64\ntimeout: 6h1s"), ["stagely.yaml: builds.api.timeout must be between 1s and 6h"]],
    ["a zero timeout", withBuild("context: .\nplatform: linux/amd64\ntimeout: 0s"), ["stagely.yaml: builds.api.timeout must be between 1s and 6h"]],
    ["a timeout under a second", withBuild("context: .\nplatform: linux/amd64\ntimeout: 500ms"), ["stagely.yaml: builds.api.timeout must be between 1s and 6h"]],
    ["an unknown key in a build", withBuild("context: .\nplatform: linux/amd64\nfoo: bar"), ["stagely.yaml: builds.api.foo is not a known key"]],
    ["an unknown top-level key", `${withBuild("context: .\nplatform: linux/amd64")}services: {}\n`, ["stagely.yaml: services is not a known key"]],
    ["an unknown key in preview", withBuild("context: .\nplatform: linux/amd64", "preview:\n  domain: x\n"), ["stagely.yaml: preview.domain is not a known key"]],
    ["an unknown key in lifecycle", withBuild("context: .\nplatform: linux/amd64", "preview:\n  lifecycle:\n    on_stop: []\n"), ["stagely.yaml: preview.lifecycle.on_stop is not a known key"]],
    ["an unknown key in a lifecycle step", withBuild("context: .\nplatform: linux/amd64", "preview:\n  lifecycle:\n    on_start: [{service: api, command: x, user: root}]\n"), ["stagely.yaml: preview.lifecycle.on_start[0].user is not a known key"]],
    ["an unknown key in test", withBuild("context: .\nplatform: linux/amd64", "test:\n  retries: 3\n"), ["stagely.yaml: test.retries is not a known key"]],
    ["build_args as a list", withBuild("context: .\nplatform: linux/amd64\nbuild_args: [A=1]"), ["stagely.yaml: builds.api.build_args must be a mapping"]],
    ["a build arg with a bad name", withBuild('context: .\nplatform: linux/amd64\nbuild_args: {"A=B": x}'), ['stagely.yaml: builds.api.build_args["A=B"] is not a valid name (letters, digits and _, not starting with a digit)']],
    ["a build arg that is a mapping", withBuild("context: .\nplatform: linux/amd64\nbuild_args: {A: {b: 1}}"), ["stagely.yaml: builds.api.build_args.A must be a string, number or boolean"]],
    ["cache_from as a string", withBuild("context: .\nplatform: linux/amd64\ncache_from: registry/app:cache"), ["stagely.yaml: builds.api.cache_from must be a list"]],
    ["an empty cache_from entry", withBuild('context: .\nplatform: linux/amd64\ncache_from: [""]'), ["stagely.yaml: builds.api.cache_from[0] must not be empty"]],
    ["an unknown preview size", withBuild("context: .\nplatform: linux/amd64", "preview:\n  size: tiny\n"), ["stagely.yaml: preview.size must be one of small, medium, large, xlarge"]],
    ["preview as a list", withBuild("context: .\nplatform: linux/amd64", "preview: [large]\n"), ["stagely.yaml: preview must be a mapping"]],
    ["on_start as a mapping", withBuild("context: .\nplatform: linux/amd64", "preview:\n  lifecycle:\n    on_start: {service: api}\n"), ["stagely.yaml: preview.lifecycle.on_start must be a list"]],
    ["a lifecycle step without fields", withBuild("context: .\nplatform: linux/amd64", "preview:\n  lifecycle:\n    on_start: [{}]\n"), ["stagely.yaml: preview.lifecycle.on_start[0].service is required", "stagely.yaml: preview.lifecycle.on_start[0].command is required"]],
    ["a lifecycle step with a bad service", withBuild("context: .\nplatform: linux/amd64", "preview:\n  lifecycle:\n    on_start: [{service: 'my api', command: x}]\n"), ["stagely.yaml: preview.lifecycle.on_start[0].service is not a valid compose service name"]],
    ["a lifecycle step for a service the compose file lacks", withBuild("context: .\nplatform: linux/amd64", "preview:\n  lifecycle:\n    on_start: [{service: web, command: x}]\n"), ["stagely.yaml: preview.lifecycle.on_start[0].service is not a service of docker-compose.yml (its services: api, db)"]],
    ["test.enabled as a string", withBuild("context: .\nplatform: linux/amd64", "test:\n  enabled: yes\n"), ["stagely.yaml: test.enabled must be true or false"]],
    ["enabled tests without image and commands", withBuild("context: .\nplatform: linux/amd64", "test:\n  enabled: true\n"), ["stagely.yaml: test.image is required when test.enabled is true", "stagely.yaml: test.commands must list at least one command when test.enabled is true"]],
    ["a test command that is a number", withBuild("context: .\nplatform: linux/amd64", "test:\n  commands: [npm test, 3]\n"), ["stagely.yaml: test.commands[1] must be a string"]],
    ["a test image with spaces", withBuild("context: .\nplatform: linux/amd64", "test:\n  image: node 20\n"), ["stagely.yaml: test.image must be an image reference without spaces"]],
    ["test.env as a list", withBuild("context: .\nplatform: linux/amd64", "test:\n  env: [A=1]\n"), ["stagely.yaml: test.env must be a mapping"]],
    ["a bad test timeout", withBuild("context: .\nplatform: linux/amd64", "test:\n  timeout: forever\n"), ["stagely.yaml: test.timeout must be a duration like 90s, 20m or 1h30m"]],
    ["a tagged binary value", withBuild("context: !!binary aGVsbG8=\nplatform: linux/amd64"), ['stagely.yaml: builds.api.context uses the YAML tag "!!binary", which is not supported here']],
  ];

  for (const [name, text, expected] of cases) {
    it(`reports ${name}`, () => {
      expect(errorsOf(text)).toEqual(expected);
    });
  }

  it("reports every problem at once, in file order", () => {
    const errors = errorsOf(`
version: 3
extra: true
builds:
  api:
    context: /abs
    platforms: [linux/amd64, linux/amd64]
    machine: giant
    timeout: soon
    foo: 1
  "bad name!":
    context: .
  web:
    dockerfile: ../Dockerfile
preview:
  size: tiny
test:
  enabled: true
  env: {B: "\${NOPE}"}
`);
    expect(errors).toEqual([
      "stagely.yaml: extra is not a known key",
      "stagely.yaml: version must be 2",
      "stagely.yaml: builds.api.foo is not a known key",
      "stagely.yaml: builds.api.context must be a relative path",
      "stagely.yaml: builds.api.platforms[1] repeats linux/amd64",
      "stagely.yaml: builds.api.machine must be one of small, medium, large, xlarge",
      "stagely.yaml: builds.api.timeout must be a duration like 90s, 20m or 1h30m",
      'stagely.yaml: builds["bad name!"] is not a valid build name (letters, digits, _ and - only)',
      "stagely.yaml: builds.web.context is required",
      'stagely.yaml: builds.web.dockerfile must not contain ".."',
      "stagely.yaml: builds.web needs platform or platforms",
      "stagely.yaml: preview.size must be one of small, medium, large, xlarge",
      "stagely.yaml: test.image is required when test.enabled is true",
      "stagely.yaml: test.commands must list at least one command when test.enabled is true",
      "stagely.yaml: test.env.B uses unknown variable ${NOPE} (known: STAGELY_HASH, STAGELY_PREVIEW_URL, COMMIT_HASH, BRANCH, PR_NUMBER, PROJECT_ID; write $${ for a literal ${)",
    ]);
  });

  it(`reports at most ${MAX_PROBLEMS} problems and counts the rest`, () => {
    const keys = Array.from({ length: MAX_PROBLEMS + 7 }, (_, i) => `    k${i}: 1`).join("\n");
    const errors = errorsOf(`version: 2\nbuilds:\n  api:\n    context: .\n    platform: linux/amd64\n${keys}\n`);
    expect(errors).toHaveLength(MAX_PROBLEMS + 1);
    expect(errors[0]).toBe("stagely.yaml: builds.api.k0 is not a known key");
    expect(errors.at(-1)).toBe("stagely.yaml: 7 more errors not shown");
  });

  it(`refuses more than ${MAX_BUILDS} builds`, () => {
    const builds = Array.from({ length: MAX_BUILDS + 1 }, (_, i) => `  b${i}: {context: ., platform: linux/amd64}`).join("\n");
    expect(errorsOf(`version: 2\nbuilds:\n${builds}\n`)).toEqual([`stagely.yaml: builds has ${MAX_BUILDS + 1} builds; at most ${MAX_BUILDS} are allowed`]);
  });
});

describe("parseStagelyYaml: variables", () => {
  it("substitutes in build_args, cache_from, lifecycle commands, test commands and test env", () => {
    const config = valid(`
version: 2
builds:
  api:
    context: .
    platform: linux/amd64
    build_args:
      ALL: "\${STAGELY_HASH}|\${STAGELY_PREVIEW_URL}|\${COMMIT_HASH}|\${BRANCH}|\${PR_NUMBER}|\${PROJECT_ID}"
    cache_from: ["registry.example.com/api:pr-\${PR_NUMBER}"]
preview:
  lifecycle:
    on_start: [{service: api, command: "seed --url \${STAGELY_PREVIEW_URL}"}]
test:
  commands: ["run --branch \${BRANCH}"]
  env: {SHA: "\${COMMIT_HASH}"}
`);
    const v = context.variables;
    expect(config.builds[0]!.build_args.ALL).toBe(`${v.STAGELY_HASH}|${v.STAGELY_PREVIEW_URL}|${v.COMMIT_HASH}|${v.BRANCH}|42|${v.PROJECT_ID}`);
    expect(config.builds[0]!.jobs[0]!.build_args.ALL).toBe(config.builds[0]!.build_args.ALL);
    expect(config.builds[0]!.cache_from).toEqual(["registry.example.com/api:pr-42"]);
    expect(config.preview.lifecycle.on_start[0]!.command).toBe(`seed --url ${v.STAGELY_PREVIEW_URL}`);
    expect(config.test.commands).toEqual(["run --branch feature/login"]);
    expect(config.test.env).toEqual({ SHA: v.COMMIT_HASH });
  });

  it("keeps $${ as a literal ${ and leaves $NAME and other $ alone", () => {
    const config = valid(withBuild("context: .\nplatform: linux/amd64", 'preview:\n  lifecycle:\n    on_start: [{service: api, command: "echo $${HOME} $HOME $$ $5 costs $"}]\n'));
    expect(config.preview.lifecycle.on_start[0]!.command).toBe("echo ${HOME} $HOME $$ $5 costs $");
  });

  it("does not substitute anywhere else", () => {
    const config = valid(withBuild('context: "${BRANCH}"\nplatform: linux/amd64', 'test:\n  image: "node:${PR_NUMBER}"\n'));
    expect(config.builds[0]!.context_path).toBe("${BRANCH}");
    expect(config.test.image).toBe("node:${PR_NUMBER}");
  });

  it("reports unknown and unterminated variables with their path", () => {
    expect(errorsOf(withBuild('context: .\nplatform: linux/amd64\nbuild_args: {A: "${HOME}", B: "${BRANCH"}'))).toEqual([
      "stagely.yaml: builds.api.build_args.A uses unknown variable ${HOME} (known: STAGELY_HASH, STAGELY_PREVIEW_URL, COMMIT_HASH, BRANCH, PR_NUMBER, PROJECT_ID; write $${ for a literal ${)",
      "stagely.yaml: builds.api.build_args.B has a ${ without a closing }",
    ]);
    expect(errorsOf(withBuild("context: .\nplatform: linux/amd64", 'preview:\n  lifecycle:\n    on_start: [{service: api, command: "echo ${__proto__}"}]\n'))[0]).toMatch(
      /^stagely\.yaml: preview\.lifecycle\.on_start\[0\]\.command uses unknown variable \$\{__proto__\}/,
    );
  });

  it("keeps a build arg named __proto__ as plain data", () => {
    const config = valid(withBuild('context: .\nplatform: linux/amd64\nbuild_args: {__proto__: "x", constructor: "y"}'));
    expect(Object.keys(config.builds[0]!.build_args)).toEqual(["__proto__", "constructor"]);
    expect(Object.getPrototypeOf(config.builds[0]!.build_args)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(config.builds[0]!.build_args))).toEqual(config.builds[0]!.build_args);
  });
});

describe("parseStagelyYaml: hostile input", () => {
  it(`refuses files over ${STAGELY_YAML_MAX_BYTES / 1024} KiB, counted in bytes`, () => {
    const big = `version: 2\n# ${"x".repeat(STAGELY_YAML_MAX_BYTES)}\n`;
    expect(errorsOf(big)).toEqual(["stagely.yaml: is larger than 64 KiB"]);
    // 30k characters, 90 KB in UTF-8.
    expect(errorsOf(`# ${"€".repeat(30_000)}`)).toEqual(["stagely.yaml: is larger than 64 KiB"]);
    expect(errorsOf("x".repeat(10 * 1024 * 1024))).toEqual(["stagely.yaml: is larger than 64 KiB"]);
  });

  it("stops a billion-laughs alias bomb quickly", () => {
    let text = 'version: 2\nbuilds:\n  api:\n    context: .\n    platform: linux/amd64\n    build_args:\n      A: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
    let previous = "a";
    for (const name of "bcdefghi") {
      text += `      ${name.toUpperCase()}: &${name} [${Array(9).fill(`*${previous}`).join(",")}]\n`;
      previous = name;
    }
    expect(errorsOf(text)).toEqual(["stagely.yaml: has more than 20000 values once its aliases and merge keys are expanded"]);
  });

  it("answers deeply nested input with an error, not a crash", () => {
    const errors = errorsOf(`version: 2\nbuilds: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n`);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.startsWith("stagely.yaml: "))).toBe(true);
  });

  it("rejects several documents in one file", () => {
    expect(errorsOf("version: 2\n---\nversion: 2\n")).toEqual(["stagely.yaml: holds several YAML documents (the second starts at line 2, column 1); only one is allowed"]);
  });

  it("never throws on odd values", () => {
    const odd: unknown[] = [undefined, null, 42, {}, "\u0000", "version: 2\nbuilds:\n  api:\n    context: \"a\\u0000b\"\n    platform: linux/amd64\n"];
    for (const input of odd) {
      const result = parseStagelyYaml(input as string, context);
      expect(result.ok).toBe(false);
    }
    expect(errorsOf('version: 2\nbuilds:\n  api:\n    context: "a\\u0000b"\n    platform: linux/amd64\n')).toEqual([
      "stagely.yaml: builds.api.context must not contain control characters",
    ]);
  });
});

describe("parseStagelyYaml: preview.expose and preview.routes", () => {
  const build = "version: 2\nbuilds:\n  api: {context: ., platform: linux/amd64}\n";
  const withCompose = (composeText: string) => ({ ...context, compose: composeOf(composeText) });
  const exposeErrors = (text: string, composeText: string) => {
    const result = parseStagelyYaml(text, withCompose(composeText));
    if (result.ok) throw new Error("expected errors");
    return result.errors;
  };

  it("takes expose and routes as written, checked against the compose file", () => {
    const config = valid(`${build}preview:\n  expose: {service: db, port: 5432}\n  routes:\n    - {name: api, service: api, port: 8080}\n    - {name: db-admin-2, service: db, port: 8081}\n`);
    expect(config.preview.expose).toEqual({ service: "db", port: 5432 });
    expect(config.preview.routes).toEqual([
      { name: "api", service: "api", port: 8080 },
      { name: "db-admin-2", service: "db", port: 8081 },
    ]);
  });

  it("exposes by default the only service that publishes a TCP port, at its container port", () => {
    const cases: [string, { service: string; port: number }][] = [
      ['services:\n  web: {image: web, ports: ["80:3000"]}\n  api: {image: api}\n', { service: "web", port: 3000 }],
      ['services:\n  web: {image: web, ports: [3000, "127.0.0.1:8080:3000", {target: 3000, published: 80}]}\n', { service: "web", port: 3000 }],
      ['services:\n  web: {image: web, ports: ["5000/udp"]}\n  app: {image: app, ports: ["8000"]}\n', { service: "app", port: 8000 }],
    ];
    for (const [composeText, expose] of cases) {
      const result = parseStagelyYaml(build, withCompose(composeText));
      expect(result.ok && result.config.preview.expose, composeText).toEqual(expose);
    }
  });

  it("asks for expose when no service, several services or several ports could be meant, naming the choices", () => {
    expect(exposeErrors(build, "services:\n  web: {image: web}\n")).toEqual([
      "stagely.yaml: preview.expose is required: no service of docker-compose.yml publishes a TCP port (ports:); set it to {service: <a service>, port: <its container port>}",
    ]);
    expect(exposeErrors(build, 'services:\n  web: {image: web, ports: ["80:3000"]}\n  api: {image: api, ports: ["8080"]}\n')).toEqual([
      "stagely.yaml: preview.expose is required: several services of docker-compose.yml publish ports (web: 3000, api: 8080); set it to one of them, e.g. {service: web, port: 3000}",
    ]);
    expect(exposeErrors(build, 'services:\n  web: {image: web, ports: ["80:3000", "443:3443"]}\n')).toEqual([
      "stagely.yaml: preview.expose is required: web publishes several ports in docker-compose.yml (3000, 3443); set it to one, e.g. {service: web, port: 3000}",
    ]);
    expect(exposeErrors(build, 'services:\n  web: {image: web, ports: ["9000-9002:9000-9002"]}\n')).toEqual([
      "stagely.yaml: preview.expose is required: web publishes several ports in docker-compose.yml (9000-9002); set it to one, e.g. {service: web, port: 9000}",
    ]);
  });

  const cases: [string, string, string[]][] = [
    ["an unknown service", "expose: {service: web, port: 80}", ["stagely.yaml: preview.expose.service is not a service of docker-compose.yml (its services: api, db)"]],
    ["no service and no port", "expose: {}", ["stagely.yaml: preview.expose.service is required", "stagely.yaml: preview.expose.port is required"]],
    ["port 0", "expose: {service: api, port: 0}", ["stagely.yaml: preview.expose.port must be a port number (1-65535)"]],
    ["port 65536", "expose: {service: api, port: 65536}", ["stagely.yaml: preview.expose.port must be a port number (1-65535)"]],
    ["a port as text", 'expose: {service: api, port: "8080"}', ["stagely.yaml: preview.expose.port must be a port number (1-65535)"]],
    ["a fractional port", "expose: {service: api, port: 80.5}", ["stagely.yaml: preview.expose.port must be a port number (1-65535)"]],
    ["an unknown key", "expose: {service: api, port: 8080, host: x}", ["stagely.yaml: preview.expose.host is not a known key"]],
    ["expose as a list", "expose: [api, 8080]", ["stagely.yaml: preview.expose must be a mapping"]],
    ["routes as a mapping", "routes: {api: 8080}", ["stagely.yaml: preview.routes must be a list"]],
    ["a route without fields", "routes: [{}]", ["stagely.yaml: preview.routes[0].name is required", "stagely.yaml: preview.routes[0].service is required", "stagely.yaml: preview.routes[0].port is required"]],
    ...["API", "a_b", "-a", "a-", "a--b", "xn", "a.b", "ü"].map((name): [string, string, string[]] => [
      `the route name ${name}`,
      `routes: [{name: "${name}", service: api, port: 8080}]`,
      ["stagely.yaml: preview.routes[0].name must be lowercase letters and digits, with single hyphens between them (a DNS label, not xn)"],
    ]),
    ["a route name of 46 characters", `routes: [{name: ${"a".repeat(46)}, service: api, port: 8080}]`, ["stagely.yaml: preview.routes[0].name is longer than 45 characters (the host <name>--<hash> must fit in 63)"]],
    ["a repeated route name", "routes: [{name: api, service: api, port: 8080}, {name: api, service: db, port: 5432}]", ["stagely.yaml: preview.routes[1].name repeats the route name api"]],
    ["a route to an unknown service", "routes: [{name: web, service: web, port: 80}]", ["stagely.yaml: preview.routes[0].service is not a service of docker-compose.yml (its services: api, db)"]],
    ["17 routes", `routes: [${Array.from({ length: 17 }, (_, i) => `{name: r${i}, service: api, port: 8080}`).join(", ")}]`, ["stagely.yaml: preview.routes has 17 routes; at most 16 are allowed"]],
  ];
  for (const [name, preview, expected] of cases) {
    it(`reports ${name}`, () => {
      expect(errorsOf(`${build}preview:\n  ${preview}\n`)).toEqual(expected);
    });
  }

  it("accepts a route name of 45 characters", () => {
    expect(valid(`${build}preview:\n  routes: [{name: ${"a".repeat(45)}, service: api, port: 8080}]\n`).preview.routes[0]!.name).toHaveLength(45);
  });

  it("without a compose file, still reports its own problems but is never ok", () => {
    const noCompose = { ...context, compose: null };
    expect(parseStagelyYaml(build, noCompose)).toEqual({ ok: false, errors: [] });
    expect(parseStagelyYaml(`${build}preview: {size: huge, expose: {service: web, port: 0}}\n`, noCompose)).toEqual({
      ok: false,
      errors: ["stagely.yaml: preview.size must be one of small, medium, large, xlarge", "stagely.yaml: preview.expose.port must be a port number (1-65535)"],
    });
  });
});

describe("parseStagelyYaml: text as written and sizes", () => {
  it("keeps build_args and env values as written", () => {
    const config = valid(withBuild("context: .\nplatform: linux/amd64\nbuild_args: &args {V: 1.10, Z: 007, H: 0x1F, E: 1e3, B: yes, T: True, N: .inf, S: '1.10'}", "test:\n  env: {<<: *args, X: 010}\n"));
    const written = { V: "1.10", Z: "007", H: "0x1F", E: "1e3", B: "yes", T: "True", N: ".inf", S: "1.10" };
    expect(config.builds[0]!.build_args).toEqual(written);
    expect(config.builds[0]!.jobs[0]!.build_args).toEqual(written);
    expect(config.test.env).toEqual({ ...written, X: "010" });
  });

  it(`limits build names to ${MAX_BUILD_NAME_CHARS} characters and paths to ${MAX_PATH_CHARS}`, () => {
    expect(valid(`version: 2\nbuilds:\n  ${"b".repeat(64)}: {context: ., platform: linux/amd64}\n`).builds[0]!.name).toHaveLength(64);
    expect(errorsOf(`version: 2\nbuilds:\n  ${"b".repeat(65)}: {context: ., platform: linux/amd64}\n`)).toEqual([
      `stagely.yaml: builds["${"b".repeat(40)}…"] is a build name longer than 64 characters`,
    ]);
    expect(errorsOf(withBuild(`context: ${"c".repeat(1025)}\nplatform: linux/amd64`))).toEqual(["stagely.yaml: builds.api.context is longer than 1024 characters"]);
    expect(errorsOf(withBuild(`context: ${"c".repeat(600)}\ndockerfile: ${"d".repeat(600)}\nplatform: linux/amd64`))).toEqual([
      "stagely.yaml: builds.api.dockerfile makes a path longer than 1024 characters with the context",
    ]);
    expect(errorsOf(withBuild(`context: .\nplatform: linux/amd64\ncache_from: [${"r".repeat(1025)}]`))).toEqual(["stagely.yaml: builds.api.cache_from[0] is longer than 1024 characters"]);
    expect(errorsOf(withBuild("context: .\nplatform: linux/amd64", `test:\n  image: ${"i".repeat(1025)}\n`))).toEqual(["stagely.yaml: test.image is longer than 1024 characters"]);
  });

  it(`limits values and commands to ${MAX_VALUE_CHARS} characters, also once variables are substituted`, () => {
    expect(errorsOf(withBuild(`context: .\nplatform: linux/amd64\nbuild_args: {A: ${"a".repeat(MAX_VALUE_CHARS + 1)}}`))).toEqual([
      `stagely.yaml: builds.api.build_args.A is longer than ${MAX_VALUE_CHARS} characters`,
    ]);
    const longBranch = { ...context, variables: { ...context.variables, BRANCH: "b".repeat(200) } };
    const result = parseStagelyYaml(withBuild(`context: .\nplatform: linux/amd64\nbuild_args: {A: "${"\${BRANCH}".repeat(41)}"}`), longBranch);
    expect(result).toEqual({ ok: false, errors: [`stagely.yaml: builds.api.build_args.A is longer than ${MAX_VALUE_CHARS} characters once variables are substituted`] });
    const command = parseStagelyYaml(withBuild("context: .\nplatform: linux/amd64", `preview:\n  lifecycle:\n    on_start: [{service: api, command: "${"\${BRANCH}".repeat(41)}"}]\n`), longBranch);
    expect(command).toEqual({ ok: false, errors: [`stagely.yaml: preview.lifecycle.on_start[0].command is longer than ${MAX_VALUE_CHARS} characters once variables are substituted`] });
  });

  it(`limits all substituted text together to ${MAX_RUN_CONFIG_BYTES / 1024} KiB`, () => {
    const longBranch = { ...context, variables: { ...context.variables, BRANCH: "b".repeat(200) } };
    const args = Array.from({ length: 40 }, (_, i) => `A${i}: "${"\${BRANCH}".repeat(40)}"`).join(", ");
    const result = parseStagelyYaml(withBuild(`context: .\nplatform: linux/amd64\nbuild_args: {${args}}`), longBranch);
    expect(result).toEqual({ ok: false, errors: ["stagely.yaml: has more than 256 KiB of text once variables are substituted"] });
  });

  it(`refuses a configuration over ${MAX_RUN_CONFIG_BYTES / 1024} KiB once builds are expanded into jobs`, () => {
    const builds = Array.from({ length: 30 }, (_, i) => `  b${i}: {context: ., platforms: [linux/amd64, linux/arm64], build_args: {A: *big}}`).join("\n");
    // 31 copies of one 7,000-character value are within the reader's limits; each build stores it three times.
    const sized = parseStagelyYaml(`version: 2\nbuilds:\n  a0: {context: ., platform: linux/amd64, build_args: {A: &big ${"x".repeat(7000)}}}\n${builds}\n`, context);
    expect(sized).toEqual({ ok: false, errors: [expect.stringMatching(/^stagely\.yaml: makes a configuration of \d+ KiB; at most 256 KiB is stored with a run$/)] });
  });

  it("stops an anchored string of variables aliased by many build_args before expanding it", () => {
    const longBranch = { ...context, variables: { ...context.variables, BRANCH: "b".repeat(200) } };
    const text = `version: 2\nbuilds:\n  api:\n    context: .\n    platform: linux/amd64\n    build_args:\n      A0: &v "${"\${BRANCH}".repeat(1800)}"\n${Array.from({ length: 98 }, (_, i) => `      A${i + 1}: *v`).join("\n")}\n`;
    const result = parseStagelyYaml(text, longBranch);
    expect(result).toEqual({ ok: false, errors: ["stagely.yaml: has more than 256 KiB of text once its aliases and merge keys are expanded"] });
  });
});

describe("parseGoDuration", () => {
  it("reads Go durations in milliseconds", () => {
    expect(parseGoDuration("90s")).toBe(90_000);
    expect(parseGoDuration("20m")).toBe(1_200_000);
    expect(parseGoDuration("1h30m")).toBe(5_400_000);
    expect(parseGoDuration("1.5h")).toBe(5_400_000);
    expect(parseGoDuration("1m30s500ms")).toBe(90_500);
    expect(parseGoDuration("2h45m10s")).toBe(9_910_000);
    expect(parseGoDuration("0")).toBe(0);
  });

  it("refuses what Go refuses", () => {
    for (const text of ["", "90", "1d", "h", "1h 30m", "-1h", "+1h", "1..5h", "1.5.5h", "1H", "1hh"]) expect(parseGoDuration(text), text).toBeUndefined();
  });
});
