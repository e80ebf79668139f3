import { describe, expect, it } from "vitest";
import type { BuildCommand } from "../../src/agents/protocol.ts";
import { BuildTranscript, buildArguments, repositoryOf } from "./build.ts";

// What `docker build` (legacy builder, the only one without buildx) and `docker buildx build --progress=plain`
// print when a step fails: copied from real runs.
const legacyFailure = [
  ["stdout", "Step 1/4 : FROM stagely-test/busybox:1"],
  ["stdout", " ---> 0ca9dd23f839"],
  ["stdout", "Step 2/4 : RUN echo compiling"],
  ["stdout", " ---> Running in 546c26fc3ad4"],
  ["stdout", "compiling"],
  ["stdout", "Step 3/4 : RUN npm run build && exit 2"],
  ["stdout", " ---> Running in f12c25871247"],
  ["stderr", "src/server.ts(12,7): error TS2322"],
  ["stderr", "The command '/bin/sh -c npm run build && exit 2' returned a non-zero code: 2"],
] as const;

const buildkitFailure = [
  ["stderr", "#5 [build 2/4] RUN npm ci"],
  ["stderr", "#6 [build 3/4] RUN npm run build"],
  ["stderr", "#5 DONE 3.1s"],
  ["stderr", "#6 4.210 src/server.ts(12,7): error TS2322"],
  ["stderr", '#6 ERROR: process "/bin/sh -c npm run build" did not complete successfully: exit code: 2'],
  ["stderr", "------"],
  ["stderr", 'ERROR: failed to solve: process "/bin/sh -c npm run build" did not complete successfully: exit code: 2'],
] as const;

describe("BuildTranscript", () => {
  it("names the failing step and the error of a legacy build", () => {
    const transcript = new BuildTranscript();
    for (const [stream, line] of legacyFailure) transcript.see(stream, line);
    expect(transcript.reason()).toBe("step 3/4 (RUN npm run build && exit 2) failed: The command '/bin/sh -c npm run build && exit 2' returned a non-zero code: 2");
    expect(transcript.exitCode()).toBe(2);
  });

  it("names the failing step of a BuildKit build by its id, even when another step started later", () => {
    const transcript = new BuildTranscript();
    for (const [stream, line] of buildkitFailure) transcript.see(stream, line);
    expect(transcript.reason()).toBe('step 3/4 (RUN npm run build) failed: process "/bin/sh -c npm run build" did not complete successfully: exit code: 2');
    expect(transcript.exitCode()).toBe(2);
  });

  it("falls back to the last error output when no step is named (a Dockerfile that does not parse)", () => {
    const transcript = new BuildTranscript();
    transcript.see("stderr", "DEPRECATED: The legacy builder is deprecated");
    transcript.see("stderr", "Error response from daemon: dockerfile parse error line 2: unknown instruction: RUNN");
    expect(transcript.reason()).toBe("the build failed: Error response from daemon: dockerfile parse error line 2: unknown instruction: RUNN");
    expect(transcript.exitCode()).toBeNull();
  });
});

describe("buildArguments", () => {
  const config: BuildCommand["build_config"] = {
    context_path: "api",
    dockerfile: "api/Dockerfile",
    target_image: "registry.local:5000/acme/api:abc",
    platform: "linux/arm64",
    build_args: { COMMIT_SHA: "abc" },
    cache_from: ["registry.local:5000/acme/api:cache"],
    cache_to: ["type=inline"],
  };
  const paths = { context: "/w/src/api", dockerfile: "/w/src/api/Dockerfile", imageIdFile: "/w/image-id", metadataFile: "/w/meta.json" };

  it("uses buildx when present: plain progress, metadata for the digest, push or load, cache export", () => {
    expect(buildArguments({ buildx: true }, config, paths, true)).toEqual({
      args: ["buildx", "build", "--progress=plain", "--platform", "linux/arm64", "-f", "/w/src/api/Dockerfile", "-t", "registry.local:5000/acme/api:abc",
        "--iidfile", "/w/image-id", "--build-arg", "COMMIT_SHA=abc", "--cache-from", "registry.local:5000/acme/api:cache",
        "--metadata-file", "/w/meta.json", "--cache-to", "type=inline", "--push", "/w/src/api"],
      env: {},
    });
    expect(buildArguments({ buildx: true }, config, paths, false).args.at(-2)).toBe("--load");
  });

  it("falls back to the legacy builder without buildx (which cannot export a cache), removing its containers on failure", () => {
    const { args, env } = buildArguments({ buildx: false }, config, paths, true);
    expect(env).toEqual({ DOCKER_BUILDKIT: "0" });
    expect(args.slice(0, 2)).toEqual(["build", "--force-rm"]);
    expect(args).not.toContain("--cache-to");
    expect(args.at(-1)).toBe("/w/src/api");
  });
});

describe("repositoryOf", () => {
  it("drops the tag or digest, keeping a registry's port", () => {
    expect(repositoryOf("registry.local:5000/acme/api:abc")).toBe("registry.local:5000/acme/api");
    expect(repositoryOf("registry.local:5000/acme/api")).toBe("registry.local:5000/acme/api");
    expect(repositoryOf("acme/api@sha256:0123")).toBe("acme/api");
    expect(repositoryOf("api:1")).toBe("api");
  });
});
