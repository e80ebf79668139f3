import { readFile, realpath } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { BuildCommand } from "../../src/agents/protocol.ts";
import { inspectImage, withRegistryLogin, type DockerTools } from "./docker.ts";
import { checkoutCommit } from "./git.ts";
import { JobFailure, seconds, type JobContext } from "./job-context.ts";
import { runProcess } from "./run-process.ts";

/** stagely.yaml's default build timeout. */
const DEFAULT_BUILD_TIMEOUT_SECONDS = 30 * 60;

/**
 * Follows a `docker build` (legacy builder) or `docker buildx build --progress=plain` transcript to say which step
 * failed and why: "step 3/4 (RUN npm run build) failed: The command '/bin/sh -c npm run build' returned a non-zero
 * code: 2".
 */
export class BuildTranscript {
  private current: string | null = null;
  private readonly steps = new Map<string, string>();
  private failedStep: string | null = null;
  private errorLine: string | null = null;
  private lastStderr: string | null = null;

  see(stream: "stdout" | "stderr", line: string): void {
    const legacy = /^Step (\d+\/\d+) : (.*)$/.exec(line);
    if (legacy) this.current = `step ${legacy[1]} (${legacy[2]!.trim()})`;
    const buildkit = /^#(\d+) \[(?:[^\]]*? )?(\d+\/\d+)\] (.*)$/.exec(line);
    if (buildkit) {
      this.current = `step ${buildkit[2]} (${buildkit[3]!.trim()})`;
      this.steps.set(buildkit[1]!, this.current);
    }
    const stepError = /^#(\d+) ERROR: (.*)$/.exec(line);
    if (stepError) {
      this.failedStep = this.steps.get(stepError[1]!) ?? this.current;
      this.errorLine = stepError[2]!;
    }
    if (stream === "stderr" && line.trim() !== "") {
      this.lastStderr = line.trim();
      if (!stepError && /^ERROR:|returned a non-zero code|^error:/i.test(line.trim())) this.errorLine ??= line.trim();
    }
  }

  /** The step running now ("step 3/4 (RUN npm ci)"), null before the first. */
  currentStep(): string | null {
    return this.current;
  }

  /** The exit code of the step that failed, when the transcript says it. */
  exitCode(): number | null {
    const code = /(?:non-zero code|exit code): (\d+)/.exec(this.errorLine ?? "")?.[1];
    return code === undefined ? null : Number(code);
  }

  reason(): string {
    const step = this.failedStep ?? this.current;
    const error = this.errorLine ?? this.lastStderr ?? "no error output";
    return step ? `${step} failed: ${error}` : `the build failed: ${error}`;
  }
}

/** `<repo root>/<path>`, refusing paths that leave the checkout (also through symbolic links). */
async function insideCheckout(root: string, path: string, what: string): Promise<string> {
  let resolved: string;
  try {
    resolved = await realpath(join(root, path));
  } catch {
    throw new JobFailure("BAD_BUILD_CONFIG", `${what} ${path} does not exist at this commit`);
  }
  const rel = relative(await realpath(root), resolved);
  if (rel === ".." || rel.startsWith(`..${sep}`) || rel.startsWith(sep)) throw new JobFailure("BAD_BUILD_CONFIG", `${what} ${path} is outside the repository`);
  return resolved;
}

/** `registry:5000/team/app:tag` → `registry:5000/team/app` (the name a digest belongs to). */
export function repositoryOf(image: string): string {
  const withoutDigest = image.split("@")[0]!;
  const slash = withoutDigest.lastIndexOf("/");
  const colon = withoutDigest.lastIndexOf(":");
  return colon > slash ? withoutDigest.slice(0, colon) : withoutDigest;
}

/** The `docker build` or `docker buildx build` arguments for a BUILD (buildx when the machine has it). */
export function buildArguments(
  tools: Pick<DockerTools, "buildx">,
  config: BuildCommand["build_config"],
  paths: { context: string; dockerfile: string; imageIdFile: string; metadataFile: string },
  push: boolean,
): { args: string[]; env: Record<string, string> } {
  const common = ["--platform", config.platform, "-f", paths.dockerfile, "-t", config.target_image, "--iidfile", paths.imageIdFile];
  for (const [name, value] of Object.entries(config.build_args)) common.push("--build-arg", `${name}=${value}`);
  for (const source of config.cache_from) common.push("--cache-from", source);
  if (tools.buildx) {
    const args = ["buildx", "build", "--progress=plain", ...common, "--metadata-file", paths.metadataFile];
    for (const target of config.cache_to) args.push("--cache-to", target);
    args.push(push ? "--push" : "--load", paths.context);
    return { args, env: {} };
  }
  // Without buildx the client refuses BuildKit: the legacy builder, which removes its containers even on failure.
  return { args: ["build", "--force-rm", ...common, paths.context], env: { DOCKER_BUILDKIT: "0" } };
}

/**
 * BUILD: a checkout of the exact commit, `docker build`, and a push when asked (builder agents by default), reporting
 * the pushed image by digest, or the local image id when the image stays on this VM. Every failure is an ERROR that
 * says what failed, then STATUS failed; a build over its timeout is stopped and fails saying so.
 */
export async function runBuild(ctx: JobContext, command: BuildCommand): Promise<void> {
  const startedAt = performance.now();
  const config = command.build_config;
  const timeoutSeconds = config.timeout_seconds ?? DEFAULT_BUILD_TIMEOUT_SECONDS;
  const deadline = AbortSignal.timeout(timeoutSeconds * 1000);
  const signal = AbortSignal.any([ctx.signal, deadline]);
  const push = config.push ?? ctx.role === "builder";
  const transcript = new BuildTranscript();
  const progress: { stage: "clone" | "build" | "push" } = { stage: "clone" };
  ctx.job.report("running");
  try {
    const checkout = join(ctx.workspace, "src");
    ctx.note(`cloning ${command.context.repo_url} at ${command.context.commit_hash.slice(0, 12)}`);
    let phase = performance.now();
    await checkoutCommit(
      {
        repoUrl: command.context.repo_url,
        commit: command.context.commit_hash,
        branch: command.context.branch,
        token: command.context.clone_token,
        dir: checkout,
      },
      { onLine: ctx.log, signal },
    );
    ctx.note(`clone finished in ${seconds(phase)} s`);

    const tools = await ctx.tools();
    if (!tools.engineVersion) throw new JobFailure("DOCKER_UNAVAILABLE", "no Docker engine answers on this machine");
    const paths = {
      context: await insideCheckout(checkout, config.context_path, "context"),
      dockerfile: await insideCheckout(checkout, config.dockerfile, "dockerfile"),
      imageIdFile: join(ctx.workspace, "image-id"),
      metadataFile: join(ctx.workspace, "build-metadata.json"),
    };
    const artifactUrl = await withRegistryLogin(
      command.registry_auth,
      ctx.workspace,
      async (loginEnv) => {
        const { args, env } = buildArguments(tools, config, paths, push);
        progress.stage = "build";
        ctx.note(`building ${config.target_image} for ${config.platform} with ${tools.buildx ? "docker buildx build" : "docker build (legacy builder)"}`);
        phase = performance.now();
        const build = await runProcess("docker", args, {
          env: { ...loginEnv, ...env },
          signal,
          backpressure: ctx.room,
          onLine: (stream, line) => {
            transcript.see(stream, line);
            ctx.log(stream, line);
          },
        });
        if (build.aborted) throw new JobFailure("BUILD_STOPPED", "the build was stopped");
        if (build.code !== 0) throw new JobFailure("BUILD_FAILED", transcript.reason(), transcript.exitCode() ?? build.code);
        ctx.note(`build finished in ${seconds(phase)} s`);
        const imageId = (await readFile(paths.imageIdFile, "utf8")).trim();
        if (!push) return imageId;

        progress.stage = "push";
        phase = performance.now();
        let digest: string | null;
        if (tools.buildx) {
          const metadata = JSON.parse(await readFile(paths.metadataFile, "utf8")) as Record<string, unknown>;
          digest = typeof metadata["containerimage.digest"] === "string" ? metadata["containerimage.digest"] : null;
        } else {
          ctx.note(`pushing ${config.target_image}`);
          const pushed = await runProcess("docker", ["push", config.target_image], { env: loginEnv, signal, onLine: ctx.log });
          if (pushed.aborted) throw new JobFailure("BUILD_STOPPED", "the push was stopped");
          if (pushed.code !== 0) throw new JobFailure("PUSH_FAILED", `docker push failed: ${pushed.stderrTail.filter(Boolean).at(-1) ?? `exit code ${pushed.code}`}`);
          const repoDigests = JSON.parse((await inspectImage(config.target_image, "{{json .RepoDigests}}")) ?? "[]") as string[];
          digest = repoDigests.find((d) => d.startsWith(`${repositoryOf(config.target_image)}@`))?.split("@")[1] ?? null;
        }
        if (!digest) throw new JobFailure("PUSH_FAILED", `the registry did not report a digest for ${config.target_image}`);
        ctx.note(`push finished in ${seconds(phase)} s`);
        return `${repositoryOf(config.target_image)}@${digest}`;
      },
      { onLine: ctx.log, signal },
    );
    ctx.note(`artifact ${artifactUrl}`);
    ctx.job.report("completed", { exit_code: 0, duration_seconds: seconds(startedAt), artifact_url: artifactUrl });
  } catch (error) {
    if (ctx.signal.aborted) {
      ctx.note("stopped: the agent was told to terminate");
      ctx.job.report("terminated", { duration_seconds: seconds(startedAt) });
      return;
    }
    const failure = deadline.aborted
      ? new JobFailure("BUILD_TIMEOUT", `the build exceeded its timeout of ${timeoutSeconds} s and was stopped during ${progress.stage === "build" ? (transcript.currentStep() ?? "the build") : `the ${progress.stage}`}`)
      : error instanceof JobFailure
        ? error
        : new JobFailure("AGENT_ERROR", `the agent failed: ${error instanceof Error ? error.message : String(error)}`);
    ctx.note(`failed: ${failure.message}`);
    ctx.job.error(failure.code, failure.message);
    ctx.job.report("failed", { exit_code: failure.exitCode ?? 1, duration_seconds: seconds(startedAt) });
  }
}
