import type { Db } from "../db/client.ts";
import { buildLogs } from "../db/schema.ts";
import { PREVIEW_ARCHITECTURE } from "./preview-vm.ts";
import { buildJobsOf, type BuildJobSpec, type BuildSpec, type StagelyConfig } from "./stagely-yaml.ts";

/**
 * Where a project's images go. Default mode (no registry in the project's settings): every build runs on the
 * environment's preview VM, for that VM's platform, and the deploy uses the local images. Registry mode: a builder VM
 * per build × platform pushes to the project's registry and the preview pulls by digest (multi-platform builds need
 * this mode). See src/registries/.
 */
/** The build jobs a run makes: all of them in registry mode; in default mode one per build, for the preview's platform. */
export function jobsForMode(config: StagelyConfig, registryMode: boolean): BuildJobSpec[] {
  if (registryMode) return buildJobsOf(config);
  return config.builds.map((build) => build.jobs.find((job) => job.architecture === PREVIEW_ARCHITECTURE) ?? build.jobs[0]!);
}

/** What the run's log says when default mode builds fewer platforms than stagely.yaml lists. */
export function skippedPlatformsNote(build: BuildSpec, built: BuildJobSpec): string | null {
  const skipped = build.platforms.filter((platform) => platform !== built.platform);
  if (skipped.length === 0) return null;
  return (
    `[stagely] build ${build.name}: stagely.yaml lists ${build.platforms.join(", ")}, but the project has no registry, so the ` +
    `image is built on the preview VM for ${built.platform} only (skipped: ${skipped.join(", ")}). Configure a registry ` +
    `for the project to build every platform (docs/stagely-yaml.md).`
  );
}

/** Core's own line at the top of a job's log (seq 0; the agent numbers its lines from 1). Idempotent. */
export async function noteInJobLog(db: Db, jobId: string, line: string): Promise<void> {
  await db.insert(buildLogs).values({ buildJobId: jobId, seq: 0, timestamp: new Date(), stream: "stdout", line }).onConflictDoNothing();
}
