import { parseComposeFile, type ComposeFile } from "../src/pipeline/compose-file.ts";
import { parseStagelyYaml, type StagelyYamlContext } from "../src/pipeline/stagely-yaml.ts";

/**
 * Hostile stagely.yaml and compose files: the cases of issue 15 and their cousins, each under the 64 KiB cap. Every
 * case must parse or fail quickly, in a few MB, with short errors (test/system/hostile-yaml.test.ts runs the table in
 * a worker thread with a capped heap and measures each case's CPU time).
 */
export interface HostileCase {
  name: string;
  file: "stagely.yaml" | "compose";
  text: () => string;
  /** What the first error must match, or "ok" when the document is valid. */
  expected: RegExp | "ok";
  /** The value of ${BRANCH} (the pull request's author chooses it). */
  branch?: string;
}

export interface HostileOutcome {
  ok: boolean;
  errors: string[];
  /** The JSON of what would be stored or used: the run config, or the compose model. */
  outputBytes: number;
}

const compose: ComposeFile = (() => {
  const parsed = parseComposeFile('services:\n  api: {build: ./api, ports: ["8080:8080"]}\n  db: {image: "postgres:16"}\n', "docker-compose.yml");
  if (!parsed.ok) throw new Error(parsed.errors.join("\n"));
  return parsed.file;
})();

function context(branch = "feature/login"): StagelyYamlContext {
  return {
    compose,
    defaultPreviewSize: "small",
    variables: {
      STAGELY_HASH: "k3j5h2g4f6d8s0a1",
      STAGELY_PREVIEW_URL: "https://k3j5h2g4f6d8s0a1.preview.example.com",
      COMMIT_HASH: "0123456789abcdef0123456789abcdef01234567",
      BRANCH: branch,
      PR_NUMBER: 42,
      PROJECT_ID: "prj_0123456789abcdef",
    },
  };
}

export function runHostileCase(hostile: HostileCase, text: string): HostileOutcome {
  const result = hostile.file === "compose" ? parseComposeFile(text, "docker-compose.yml") : parseStagelyYaml(text, context(hostile.branch));
  if (!result.ok) return { ok: false, errors: result.errors, outputBytes: 0 };
  const output = "config" in result ? result.config : result.file;
  return { ok: true, errors: [], outputBytes: new TextEncoder().encode(JSON.stringify(output)).length };
}

const KIB = 1024;
const build = "version: 2\nbuilds:\n  api:\n    context: .\n    platform: linux/amd64\n";
/** `{{{a: 1}: 1}: 1}`: collections nested as map keys, `n` deep. */
const nestedKeys = (n: number) => {
  let key = "a";
  for (let i = 0; i < n; i++) key = `{${key}: 1}`;
  return key;
};
/** Fills a document up to about `bytes` with `line` repeated. */
const fill = (line: string, bytes: number) => line.repeat(Math.floor(bytes / line.length));
const aliasChain = (levels: number) => {
  let text = "l0: &l0 [x, x]\n";
  for (let i = 1; i <= levels; i++) text += `l${i}: &l${i} [*l${i - 1}, *l${i - 1}]\n`;
  return text;
};
const billionLaughs = () => {
  let text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  let previous = "a";
  for (const name of "bcdefghi") {
    text += `${name}: &${name} [${Array(9).fill(`*${previous}`).join(",")}]\n`;
    previous = name;
  }
  return text;
};
const composeServices = (n: number) =>
  `services:\n${Array.from(
    { length: n },
    (_, i) =>
      `  svc${i}:\n    image: registry.example.com/team/svc${i}:latest\n    ports: ["${8000 + i}:3000"]\n    environment:\n      - DATABASE_URL=postgres://db/x\n      - REDIS_URL=redis://cache\n    depends_on: [db]\n    healthcheck:\n      test: ["CMD", "curl", "-f", "http://localhost:3000/health"]\n      interval: 10s\n`,
  ).join("")}`;

export const hostileCases: HostileCase[] = [
  // CPU: collections nested as map keys (the yaml package wrote each key out at every level).
  { name: "collection keys nested 1 KB deep", file: "stagely.yaml", text: () => `x: ${nestedKeys(200)}\n`, expected: /nests collections more than 32 levels deep/ },
  { name: "collection keys nested 3 KB deep", file: "stagely.yaml", text: () => `x: ${nestedKeys(600)}\n`, expected: /nests collections more than 32 levels deep/ },
  { name: "collection keys nested 30 levels", file: "stagely.yaml", text: () => `x: ${nestedKeys(30)}\n`, expected: /has a key that is a list or mapping/ },
  { name: "block collection keys (? [..])", file: "stagely.yaml", text: () => fill("? [a, b, c]\n: 1\n", 60 * KIB), expected: /has more than 6000 YAML tokens/ },
  { name: "many small collection keys", file: "stagely.yaml", text: () => `${build}x:\n${fill("  ? {a: [1, 2]}\n  : 1\n", 60 * KIB)}`, expected: /has more than (6000|12000) YAML tokens/ },
  // CPU: aliases.
  { name: "an anchored list of 5,678 aliases, aliased again", file: "stagely.yaml", text: () => `x: &x 1\na: &a [${Array(5678).fill("*x").join(",")}]\nb: *a\n`, expected: /has more than 100 YAML aliases/ },
  { name: "billion laughs (9^9)", file: "stagely.yaml", text: billionLaughs, expected: /has more than 20000 values once its aliases and merge keys are expanded/ },
  { name: "an alias chain doubling 30 times", file: "stagely.yaml", text: () => aliasChain(30), expected: /has more than 20000 values once its aliases and merge keys are expanded/ },
  { name: "merge keys fanning out", file: "stagely.yaml", text: () => `${aliasChain(0)}m0: &m0 {a: *l0, b: *l0, c: *l0}\n${Array.from({ length: 40 }, (_, i) => `m${i + 1}: &m${i + 1} {<<: [*m${i}], k${i}: *m${i}}`).join("\n")}\n`, expected: /more than (20000 values|256 KiB of text) once its aliases/ },
  { name: "an alias used before its anchor", file: "stagely.yaml", text: () => `${build}x: *nowhere\n`, expected: /uses the alias "nowhere" before its anchor is defined/ },
  { name: "an alias inside its own anchor", file: "stagely.yaml", text: () => "x: &a {b: *a}\n", expected: /inside the value it names/ },
  // CPU: keys.
  { name: "13,000 keys", file: "stagely.yaml", text: () => Array.from({ length: 13_000 }, (_, i) => `k${i}: 1`).join("\n").slice(0, 63 * KIB), expected: /has more than 12000 YAML tokens/ },
  { name: "one key repeated 9,000 times", file: "stagely.yaml", text: () => fill("k: 1\n", 45 * KIB), expected: /has more than 12000 YAML tokens/ },
  { name: "one key repeated 1,500 times (under the token limits)", file: "stagely.yaml", text: () => fill("k: 1\n", 7500), expected: /has the key "k" more than once/ },
  { name: "1: and '1': as build names", file: "stagely.yaml", text: () => "version: 2\nbuilds:\n  1: {context: ., platform: linux/amd64}\n  '1': {context: ., platform: linux/amd64}\n", expected: /builds has the key "1" more than once/ },
  { name: "a 60 KB implicit key", file: "stagely.yaml", text: () => `${"k".repeat(60 * KIB)}: 1\n`, expected: /is not valid YAML/ },
  { name: "a 60 KB explicit key", file: "stagely.yaml", text: () => `? ${"k".repeat(60 * KIB)}\n: 1\n`, expected: /is longer than 16384 characters/ },
  // Nesting and layout.
  { name: "60,000 [", file: "stagely.yaml", text: () => `x: ${"[".repeat(60_000)}`, expected: /nests collections more than 32 levels deep/ },
  { name: "60,000 {", file: "stagely.yaml", text: () => `x: ${"{".repeat(60_000)}`, expected: /nests collections more than 32 levels deep/ },
  { name: "30,000 compact block sequences (- - -)", file: "stagely.yaml", text: () => `${"- ".repeat(30_000)}x\n`, expected: /nests collections more than 32 levels deep/ },
  { name: "30,000 explicit keys (? ? ?)", file: "stagely.yaml", text: () => `${"? ".repeat(30_000)}x\n`, expected: /nests collections more than 32 levels deep/ },
  { name: "block mappings indented as deep as 64 KB allows", file: "stagely.yaml", text: () => Array.from({ length: 350 }, (_, i) => `${" ".repeat(i)}k:`).join("\n"), expected: /nests collections more than 32 levels deep/ },
  { name: "60,000 ]", file: "stagely.yaml", text: () => "]".repeat(60_000), expected: /has more than 6000 YAML tokens/ },
  { name: "a flow list of 60,000 commas", file: "stagely.yaml", text: () => `[${",".repeat(60_000)}]`, expected: /has more than 6000 YAML tokens/ },
  { name: "a flow list of 30,000 numbers", file: "stagely.yaml", text: () => `[${Array(30_000).fill("1").join(",")}]`, expected: /has more than 6000 YAML tokens/ },
  { name: "64 KB of blank lines", file: "stagely.yaml", text: () => `${build}${"\n".repeat(63 * KIB)}`, expected: /has more than 12000 YAML tokens counting spaces, line breaks and comments/ },
  { name: "64 KB of comment lines", file: "stagely.yaml", text: () => `${build}${fill("#\n", 63 * KIB)}`, expected: /has more than 12000 YAML tokens counting spaces, line breaks and comments/ },
  { name: "64 KB of tab-indented lines", file: "stagely.yaml", text: () => fill("a:\n\tb: 1\n", 63 * KIB), expected: /has more than 12000 YAML tokens/ },
  { name: "16,000 documents", file: "stagely.yaml", text: () => "---\n".repeat(16_000), expected: /has more than 6000 YAML tokens/ },
  { name: "two documents", file: "stagely.yaml", text: () => `${build}---\n${build}`, expected: /holds several YAML documents/ },
  // Properties.
  { name: "16,000 anchors on one value", file: "stagely.yaml", text: () => `x: ${"&a ".repeat(16_000)}1\n`, expected: /has more than 100 YAML anchors/ },
  { name: "16,000 tags on one value", file: "stagely.yaml", text: () => `x: ${"!t ".repeat(16_000)}1\n`, expected: /has more than 100 YAML tags/ },
  { name: "an unknown tag", file: "stagely.yaml", text: () => `${build}x: !!python/object:os.system ls\n`, expected: /uses the YAML tag "!!python\/object:os\.system", which is not supported here/ },
  // Echo: errors never quote much of the input.
  { name: "an undefined tag handle followed by 60 KB", file: "stagely.yaml", text: () => `x: !e!${"y".repeat(60 * KIB)} 1\n`, expected: /is not valid YAML/ },
  { name: "a block scalar header followed by 60 KB", file: "stagely.yaml", text: () => `x: |${"z".repeat(60 * KIB)}\n  a\n`, expected: /is not valid YAML/ },
  { name: "markdown, mentions and bidi controls in a key", file: "stagely.yaml", text: () => `${build}"@octocat [x](https://evil.example) <img src=x>\u202Egnp.exe": 1\n`, expected: /^stagely\.yaml: \["@octocat \[x\]\(https:\/\/evil\.example\) <img …"\] is not a known key$/ },
  { name: "a 65,000-character build name", file: "stagely.yaml", text: () => `version: 2\nbuilds:\n  ${"b".repeat(63 * KIB)}: {context: ., platform: linux/amd64}\n`, expected: /is not valid YAML/ },
  { name: "a 16,000-character build name", file: "stagely.yaml", text: () => `version: 2\nbuilds:\n  ? ${"b".repeat(16_000)}\n  : {context: ., platform: linux/amd64}\n`, expected: /is a build name longer than 64 characters/ },
  { name: "a 16,000-character context", file: "stagely.yaml", text: () => `version: 2\nbuilds:\n  api: {context: ${"c".repeat(16_000)}, platform: linux/amd64}\n`, expected: /builds\.api\.context is longer than 1024 characters/ },
  // Memory: variable expansion.
  { name: "a 64 KB string of ${BRANCH} aliased by 99 build_args, 200-character branch", file: "stagely.yaml", branch: "b".repeat(200), text: () => `${build}    build_args:\n      A0: &v "${"${BRANCH}".repeat(7000)}"\n${Array.from({ length: 98 }, (_, i) => `      A${i + 1}: *v`).join("\n")}\n`, expected: /is longer than 16384 characters/ },
  { name: "a 16 KB string of ${BRANCH} aliased by 99 build_args, 200-character branch", file: "stagely.yaml", branch: "b".repeat(200), text: () => `${build}    build_args:\n      A0: &v "${"${BRANCH}".repeat(1800)}"\n${Array.from({ length: 98 }, (_, i) => `      A${i + 1}: *v`).join("\n")}\n`, expected: /has more than 256 KiB of text once its aliases and merge keys are expanded/ },
  { name: "a 2 KB string of ${BRANCH} aliased by 99 build_args, 200-character branch", file: "stagely.yaml", branch: "b".repeat(200), text: () => `${build}    build_args:\n      A0: &v "${"${BRANCH}".repeat(220)}"\n${Array.from({ length: 98 }, (_, i) => `      A${i + 1}: *v`).join("\n")}\n`, expected: /build_args\.A0 is longer than 8192 characters once variables are substituted/ },
  { name: "40 build_args of 8,000 characters once substituted", file: "stagely.yaml", branch: "b".repeat(200), text: () => `${build}    build_args:\n${Array.from({ length: 40 }, (_, i) => `      A${i}: "${"${BRANCH}".repeat(40)}"`).join("\n")}\n`, expected: /has more than 256 KiB of text once variables are substituted/ },
  { name: "30 builds sharing a 7,000-character build arg on two platforms", file: "stagely.yaml", text: () => `version: 2\nbuilds:\n  a: {context: ., platform: linux/amd64, build_args: {A: &big ${"x".repeat(7000)}}}\n${Array.from({ length: 30 }, (_, i) => `  b${i}: {context: ., platforms: [linux/amd64, linux/arm64], build_args: {A: *big}}`).join("\n")}\n`, expected: /makes a configuration of \d+ KiB; at most 256 KiB/ },
  // Large but valid.
  { name: "a long valid stagely.yaml (32 builds on two platforms)", file: "stagely.yaml", text: () => `version: 2\nbuilds:\n${Array.from({ length: 32 }, (_, i) => `  b${i}:\n    context: ./services/b${i}\n    platforms: [linux/amd64, linux/arm64]\n    build_args: {COMMIT: "\${COMMIT_HASH}", VERSION: 1.10, N: ${i}}\n    cache_from: ["registry.example.com/b${i}:cache"]\n`).join("")}preview:\n  lifecycle:\n    on_start: [{service: api, command: "npm run migrate -- --branch \${BRANCH}"}]\n`, expected: "ok" },
  { name: "a 64 KB plain scalar", file: "stagely.yaml", text: () => `x: ${"p".repeat(63 * KIB)}\n`, expected: /is longer than 16384 characters/ },
  { name: "64 KB of escapes in a quoted scalar", file: "stagely.yaml", text: () => `x: "${"\\u0041".repeat(10_000)}"\n`, expected: /is not a known key/ },
  { name: "multibyte text at the byte cap", file: "stagely.yaml", text: () => `# ${"€".repeat(21_800)}\n${build}`, expected: "ok" },
  { name: "multibyte text just over the byte cap", file: "stagely.yaml", text: () => `# ${"€".repeat(21_845)}\n`, expected: /is larger than 64 KiB/ },
  { name: "control characters and NUL", file: "stagely.yaml", text: () => `${build}x: "\\0\\u0007\\u001b"\n\u0000`, expected: /is not valid YAML/ },
  // Compose files.
  { name: "a valid compose file of 100 services", file: "compose", text: () => composeServices(100), expected: "ok" },
  { name: "a compose file of 101 services", file: "compose", text: () => composeServices(101), expected: /services has 101 services; at most 100 are allowed/ },
  { name: "a compose file with 20,000 ports", file: "compose", text: () => `services:\n  web:\n    image: web\n    ports:\n${fill('      - "1-65535:1-65535"\n', 63 * KIB)}`, expected: /has more than 12000 YAML tokens/ },
  { name: "a compose file with 2,000 port ranges", file: "compose", text: () => `services:\n  web:\n    image: web\n    ports: [${Array(2000).fill('"1-65535:1-65535"').join(", ")}]\n`, expected: "ok" },
  { name: "a compose file of merge keys fanning out", file: "compose", text: () => `x-a: &a {image: x, environment: [${Array(50).fill("A=1").join(", ")}]}\nservices:\n${Array.from({ length: 100 }, (_, i) => `  s${i}: {<<: *a}`).join("\n")}\n`, expected: "ok" },
  { name: "a compose file with collection keys nested 3 KB deep", file: "compose", text: () => `services:\n  web: {image: web}\nx-a: ${nestedKeys(600)}\n`, expected: /nests collections more than 32 levels deep/ },
];
