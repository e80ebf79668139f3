import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { Logger } from "../../src/lib/logger.ts";
import { pipelineContext } from "../../src/pipeline/context.ts";
import { runReaper } from "../../src/pipeline/reaper.ts";
import { AgentDriver } from "../agent-driver.ts";
import { db, waitForQuiet } from "../db.ts";
import { pullRequestPayload, sendWebhook } from "../github-webhooks.ts";
import { ageProject } from "../time-travel.ts";
import { previewProject, runningVms, sha } from "./helpers.ts";

// Randomized interleavings of what goes wrong in real life: duplicated and reordered webhook deliveries, queue
// messages delivered twice, builds that fail, VMs whose agent never comes up, pull requests closed mid-build and
// reopened. After each scenario (and a reaper pass), nothing may be left running and nothing stuck.

const SCENARIOS = Number(env.CHAOS_SCENARIOS || 6);
const SEED = Number(env.CHAOS_SEED || Date.now() % 100_000);

/** mulberry32: small, seedable, good enough to pick interleavings. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;

const driver = new AgentDriver({}, () => {
  const roll = random();
  if (roll < 0.12) return false; // the VM boots, its agent never dials in
  if (roll < 0.25) return { failBuilds: true };
  return true;
});
driver.start();
afterAll(() => driver.stop());

interface Delivery {
  action: string;
  commit: string;
  at: string;
  pr: number;
  deliveryId: string;
}

function plan(prs: number[]): Delivery[] {
  const deliveries: Delivery[] = [];
  for (const pr of prs) {
    let minute = 0;
    const at = () => new Date(Date.UTC(2026, 10, 26, 12, minute++)).toISOString();
    const push = (action: string, commit: string) => deliveries.push({ action, commit, at: at(), pr, deliveryId: crypto.randomUUID() });
    push("opened", sha(1));
    for (let n = Math.floor(random() * 3); n > 0; n--) push("synchronize", pick([sha(2), sha(3), sha(4)]));
    if (random() < 0.3) {
      push("closed", sha(4));
      push("reopened", sha(4));
    }
    push("closed", sha(4));
  }
  return deliveries;
}

/** Deliveries in a shuffled-ish order (neighbours swapped), some twice, some repeated straight onto the queue. */
function interleave(deliveries: Delivery[]): { delivery: Delivery; viaQueue: boolean }[] {
  const order = [...deliveries];
  for (let i = 0; i + 1 < order.length; i++) if (random() < 0.3) [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
  const sends: { delivery: Delivery; viaQueue: boolean }[] = [];
  for (const delivery of order) {
    sends.push({ delivery, viaQueue: false });
    if (random() < 0.3) sends.push({ delivery, viaQueue: false });
    if (random() < 0.3) sends.push({ delivery, viaQueue: true });
  }
  return sends;
}

describe(`randomized pull request lifecycles (seed ${SEED}; rerun with CHAOS_SEED=${SEED})`, () => {
  for (let scenario = 1; scenario <= SCENARIOS; scenario++) {
    it(`scenario ${scenario}: nothing leaks, nothing is stuck`, { timeout: 120_000 }, async () => {
      const prs = random() < 0.5 ? [1] : [1, 2];
      const project = await previewProject([sha(1), sha(2), sha(3), sha(4)], { quota: { builds: pick([1, 2, 10]) } });
      for (const { delivery, viaQueue } of interleave(plan(prs))) {
        const payload = pullRequestPayload({ action: delivery.action, repo: project.repo, number: delivery.pr, sha: delivery.commit, updatedAt: delivery.at, installationId: project.installationId });
        if (viaQueue) {
          await env.JOBS.send({
            type: "github.pull_request",
            delivery_id: delivery.deliveryId,
            installation_id: project.installationId,
            repository: project.repo,
            action: delivery.action,
            pr_number: delivery.pr,
            head_sha: delivery.commit,
            head_ref: "feature",
            is_fork: false,
            updated_at: delivery.at,
            sender: "octocat",
          });
        } else {
          const response = await sendWebhook("pull_request", payload, { deliveryId: delivery.deliveryId });
          expect([200, 202]).toContain(response.status);
        }
        await new Promise((r) => setTimeout(r, Math.floor(random() * 150)));
      }

      await waitForQuiet(600, 60_000);
      const ctx = await pipelineContext(env, new Logger("error"));
      for (let pass = 0; pass < 2; pass++) {
        await ageProject(project.projectId, 30);
        await runReaper(ctx);
        await waitForQuiet(600, 60_000);
      }

      const stuck = await db.execute<{ kind: string; id: string; status: string }>(sql`
        SELECT 'environment' AS kind, e.id, e.status FROM environments e
         WHERE e.project_id = ${project.projectId} AND e.status NOT IN ('terminated', 'reaped')
        UNION ALL
        SELECT 'run', r.id, r.status FROM workflow_runs r JOIN environments e ON e.id = r.environment_id
         WHERE e.project_id = ${project.projectId} AND r.status NOT IN ('completed', 'failed', 'cancelled')
        UNION ALL
        SELECT 'job', j.id, j.status FROM build_jobs j JOIN workflow_runs r ON r.id = j.workflow_run_id JOIN environments e ON e.id = r.environment_id
         WHERE e.project_id = ${project.projectId} AND j.status NOT IN ('completed', 'failed', 'cancelled')`);
      expect(stuck.rows, "stuck outside a final state").toEqual([]);

      const environmentIds = (await db.execute<{ id: string }>(sql`SELECT id FROM environments WHERE project_id = ${project.projectId}`)).rows.map((r) => r.id);
      const leaked = (await runningVms(project.providerId)).filter((vm) => vm.tags.environment_id && environmentIds.includes(vm.tags.environment_id));
      expect(leaked.map((vm) => `${vm.id} (${JSON.stringify(vm.tags)})`), "VMs left running").toEqual([]);
    });
  }
});
