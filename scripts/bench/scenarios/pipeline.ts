import { sql } from "drizzle-orm";
import { startSimulatedAgent } from "../../agent-sim/agent.ts";
import type { StartAgent } from "../../local-cloud/server.ts";
import { generateToken } from "../../../src/auth/tokens.ts";
import { getDb } from "../../../src/db/client.ts";
import { apiTokens, githubInstallationRepositories, githubInstallations, teamMembers, teams, users } from "../../../src/db/schema.ts";
import { hmacSha256Hex } from "../../../src/lib/crypto.ts";
import { newId } from "../../../src/lib/ids.ts";
import { GITHUB_WEBHOOK_SECRET } from "../../local-github/github.ts";
import type { BenchScenario } from "../types.ts";

/**
 * The preview pipeline end to end against `wrangler dev`: the fake GitHub App, the local cloud (no boot delay) and
 * the agent simulator as fast as it goes, so what is measured is Core. Reports (a) webhook → BUILD received by the
 * builder's agent, one PR at a time, and the round trips of one PR from webhook to ready; (b) a burst of PRs opened
 * at once: time until all are ready, with max_concurrent_builds respected, and the peak of waiting work.
 */

const STAGELY_YAML = "version: 2\nbuilds:\n  app:\n    context: .\n    platform: linux/amd64\n";
// The preview URL reaches app:8080 (preview.expose defaults to the only service that publishes a port).
const COMPOSE = 'services:\n  app: {image: app, ports: ["8080"]}\n';

/** Records when each builder agent received its BUILD: the local cloud runs this for every VM that boots. */
export function recordingSimulator(buildReceived: Map<string, number>): StartAgent {
  return (agent) =>
    startSimulatedAgent({
      coreUrl: agent.core_url,
      token: agent.token,
      speed: Number.POSITIVE_INFINITY,
      linesPerBuild: 20,
      log: () => {},
      onMessage: (message) => {
        if (message.type === "BUILD" && !buildReceived.has(message.job_id)) buildReceived.set(message.job_id, performance.now());
      },
    });
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : 0;
}

export function pipelineScenario(buildReceived: Map<string, number>, prs: number): BenchScenario {
  return {
    name: "pipeline",
    async run({ target, log }) {
      const db = getDb(target.local.databaseUrl(target.database));
      const api = async (method: string, path: string, token: string, body?: unknown) => {
        const response = await fetch(`${target.apiUrl}${path}`, {
          method,
          headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
        return response.json() as Promise<any>;
      };
      const fake = async (path: string, body: unknown) => {
        const response = await fetch(`${target.githubUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
        if (!response.ok) throw new Error(`fake GitHub ${path}: ${response.status}`);
        return response.json() as Promise<any>;
      };

      const userId = newId("user");
      const teamId = newId("team");
      const token = await generateToken("api");
      await db.batch([
        db.insert(users).values({ id: userId, email: `${userId}@bench.test` }),
        db.insert(teams).values({ id: teamId, slug: "pipeline-bench", name: "Pipeline bench", maxConcurrentEnvironments: prs + 40, maxConcurrentBuilds: 10 }),
        db.insert(teamMembers).values({ teamId, userId, role: "owner" }),
        db.insert(apiTokens).values({ id: newId("token"), userId, kind: "api", name: "bench", tokenHash: token.hash, tokenHint: token.hint, lastUsedAt: new Date() }),
      ]);
      const provider = await api("POST", "/v1/teams/pipeline-bench/cloud-providers", token.token, {
        name: "local",
        provider_type: "local",
        region: "local",
        config: { endpoint: target.localCloudUrl },
      });
      const repo = "bench/app";
      // The App installed on the repository and connected to the team, as the install flow leaves it.
      const installation = await fake("/_fake/app/installations", { repositories: [repo] });
      await db.batch([
        db.insert(githubInstallations).values({ id: installation.id, teamId, accountLogin: "bench", accountType: "Organization", repositorySelection: "selected" }),
        db.insert(githubInstallationRepositories).values({ installationId: installation.id, repositoryId: installation.repositories[0].id, fullName: repo }),
      ]);
      const project = await api("POST", "/v1/teams/pipeline-bench/projects", token.token, { name: "App", repo_url: repo, cloud_provider_id: provider.id });
      const commit = "c".repeat(40);
      await fake(`/_fake/repos/${repo}/files`, { ref: commit, path: "stagely.yaml", content: STAGELY_YAML });
      await fake(`/_fake/repos/${repo}/files`, { ref: commit, path: "docker-compose.yml", content: COMPOSE });

      let pr = 0;
      const openPr = async () => {
        const number = ++pr;
        const body = JSON.stringify({
          action: "opened",
          number,
          pull_request: { updated_at: new Date().toISOString(), head: { sha: commit, ref: `pr-${number}`, repo: { full_name: repo } } },
          repository: { full_name: repo },
          installation: { id: installation.id },
          sender: { login: "bench" },
        });
        const started = performance.now();
        const response = await fetch(`${target.apiUrl}/v1/webhooks/github`, {
          signal: AbortSignal.timeout(30_000),
          method: "POST",
          body,
          headers: {
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": crypto.randomUUID(),
            "X-Hub-Signature-256": `sha256=${await hmacSha256Hex(GITHUB_WEBHOOK_SECRET, body)}`,
          },
        });
        if (response.status !== 202) throw new Error(`webhook: ${response.status} ${await response.text()}`);
        return { number, started, handlerMs: performance.now() - started };
      };
      // The benchmark's own polling goes to the same database; it is counted here and left out of the report.
      let ownQueries = 0;
      const state = () => {
        ownQueries++;
        return db.execute<{ ready: number; active_builds: number; waiting: number }>(sql`
          SELECT (SELECT count(*)::int FROM environments WHERE project_id = ${project.id} AND status = 'ready') AS ready,
                 (SELECT count(*)::int FROM build_jobs WHERE status IN ('provisioning', 'running')) AS active_builds,
                 (SELECT count(*)::int FROM build_jobs WHERE status = 'queued') + (SELECT count(*)::int FROM environments WHERE status = 'pending') AS waiting`);
      };
      const jobOf = async (number: number) => {
        ownQueries++;
        const result = await db.execute<{ id: string }>(sql`
          SELECT j.id FROM build_jobs j JOIN workflow_runs r ON r.id = j.workflow_run_id JOIN environments e ON e.id = r.environment_id
           WHERE e.project_id = ${project.id} AND e.pr_number = ${number}`);
        return result.rows[0]?.id;
      };

      // Room for every environment of both phases (the environment quota would otherwise, rightly, keep some waiting).
      const sequential = Math.min(30, prs);
      log(`${sequential} pull requests one at a time: webhook → BUILD at the agent ...`);
      const latencies: number[] = [];
      const handler: number[] = [];
      await target.resetDbStats();
      ownQueries = 0;
      for (let i = 0; i < sequential; i++) {
        const opened = await openPr();
        handler.push(opened.handlerMs);
        let jobId: string | undefined;
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          jobId ??= await jobOf(opened.number);
          const received = jobId ? buildReceived.get(jobId) : undefined;
          if (received !== undefined) {
            latencies.push(received - opened.started);
            break;
          }
          await new Promise((r) => setTimeout(r, 5));
        }
        while ((await state()).rows[0]!.ready < opened.number && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        if (Date.now() >= deadline) throw new Error(`PR ${opened.number} was not ready within 30 s (BUILD ${jobId ? "sent" : "never sent"})`);
        if ((i + 1) % 10 === 0) log(`  ${i + 1}/${sequential} ready`);
      }
      const perPr = ((await target.dbStats()).round_trips - ownQueries) / sequential;
      latencies.sort((a, b) => a - b);
      handler.sort((a, b) => a - b);

      log(`burst: ${prs} pull requests opened at once (max_concurrent_builds 10) ...`);
      const baseline = (await state()).rows[0]!.ready;
      const burstStart = performance.now();
      const handlers = await Promise.all(Array.from({ length: prs }, () => openPr()));
      log(`  ${prs} webhooks answered in ${((performance.now() - burstStart) / 1000).toFixed(1)} s (slowest ${Math.max(...handlers.map((h) => h.handlerMs)).toFixed(0)} ms)`);
      let peakWaiting = 0;
      let peakActive = 0;
      let ready = baseline;
      const deadline = Date.now() + 600_000;
      let lastReport = Date.now();
      while (ready < baseline + prs && Date.now() < deadline) {
        const row = (await state()).rows[0]!;
        if (Date.now() - lastReport > 10_000) {
          log(`  ${row.ready - baseline}/${prs} ready, ${row.active_builds} building, ${row.waiting} waiting`);
          lastReport = Date.now();
        }
        peakWaiting = Math.max(peakWaiting, row.waiting);
        peakActive = Math.max(peakActive, row.active_builds);
        ready = row.ready;
        await new Promise((r) => setTimeout(r, 100));
      }
      const burstSeconds = (performance.now() - burstStart) / 1000;
      return [
        {
          scenario: `webhook → BUILD at the agent (${sequential} PRs, one at a time)`,
          p50_ms: Number(percentile(latencies, 50).toFixed(1)),
          p99_ms: Number(percentile(latencies, 99).toFixed(1)),
          webhook_handler_p50_ms: Number(percentile(handler, 50).toFixed(1)),
          db_round_trips_per_pr_to_ready: Number(perPr.toFixed(1)),
        },
        {
          scenario: `burst of ${prs} PRs opened at once`,
          all_ready: ready - baseline === prs,
          seconds_until_all_ready: Number(burstSeconds.toFixed(1)),
          peak_waiting_work: peakWaiting,
          peak_concurrent_builds: peakActive,
          build_quota: 10,
        },
      ];
    },
  };
}
