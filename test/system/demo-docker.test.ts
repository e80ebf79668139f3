import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, ensureBaseImage, removeTestImages, requireDocker } from "./docker-fixtures.ts";
import { startDevSession, type DevSession } from "./dev-session.ts";

// `npm run demo` on the real agent: npm run dev's local cloud runs each VM's agent on this machine's Docker engine,
// the preview VM clones the pull request's commit from the local GitHub, builds examples/demo-app where it runs (no
// registry), starts the compose file, waits for the healthchecks and runs the on_start hook.

const hasDocker = requireDocker("npm run demo on the real agent");
/** examples/demo-app starts FROM busybox:1.36; with no Docker Hub here it is the busybox the other tests import. */
const EXAMPLE_BASE = "busybox:1.36";
let session: DevSession;

describe.skipIf(!hasDocker)("npm run demo on the real agent", () => {
  beforeAll(async () => {
    try {
      docker("image", "inspect", "--format", "{{.Id}}", EXAMPLE_BASE);
    } catch {
      docker("tag", ensureBaseImage(), EXAMPLE_BASE);
    }
    session = await startDevSession("docker");
  }, 180_000);

  afterAll(async () => {
    await session?.stop();
    try {
      removeTestImages("acme/demo-app");
    } catch (error) {
      // An image still used by a container the engine is removing: left for the next run's build cache.
      console.warn(`could not remove the demo's images: ${error instanceof Error ? error.message : String(error)}`);
    }
  }, 60_000);

  it("builds and deploys the example app on Docker: healthy services, the on_start hook run, the preview ready", async () => {
    const { code, output } = await session.demo();
    expect(code, output).toBe(0);
    // The builders checked out the pull request's commit from the local GitHub and built both services.
    expect(output).toMatch(/web_amd64 \| \[stagely\] clone finished in/);
    expect(output).toMatch(/web_amd64 \| built from commit [0-9a-f]{40}/);
    expect(output).toMatch(/^preview ready: http:\/\/[a-z0-9]+\.preview\.localhost:\d+\//m);

    // The preview VM's compose project: web serves the page built from that commit, api the data its hook seeded.
    // The deploy runs the images by their local ids: find the containers by the compose project of this preview VM.
    const container = (service: string) =>
      docker("ps", "--filter", `label=com.docker.compose.service=${service}`, "--format", "{{.ID}} {{.Label \"com.docker.compose.project\"}}")
        .split("\n")
        .filter((line) => line.split(" ")[1]?.startsWith("stg_"))
        .map((line) => line.split(" ")[0]!)
        .find((id) => {
          try {
            return docker("exec", id, "sh", "-c", "test -f /www/commit.txt || test -f /app/seed.sh && echo yes || echo no") === "yes";
          } catch {
            return false; // stopping as we look
          }
        });
    const web = container("web")!;
    const api = container("api")!;
    expect(docker("exec", web, "cat", "/www/index.html")).toContain("Hello from a Stagely preview");
    expect(JSON.parse(docker("exec", api, "cat", "/data/seed.json"))).toMatchObject({ seeded: true, pull_request: "1" });
    expect(docker("inspect", "--format", "{{.State.Health.Status}}", web)).toBe("healthy");

    const closed = await session.demo("--close");
    expect(closed.code, closed.output).toBe(0);
    // The preview VM is terminated with the environment: its services go with it.
    const deadline = Date.now() + 90_000;
    while (container("web") || container("api")) {
      if (Date.now() > deadline) throw new Error("the preview's containers still run 90 s after the pull request closed");
      await new Promise((r) => setTimeout(r, 1000));
    }
  }, 300_000);
});
