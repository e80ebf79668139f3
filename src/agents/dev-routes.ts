import { Hono } from "hono/tiny";
import { createMiddleware } from "hono/factory";
import * as z from "zod";
import { configOf, dbOf, type AppEnv } from "../app-env.ts";
import { requireAuth } from "../auth/middleware.ts";
import { associatedData } from "../db/encrypted-columns.ts";
import { buildJobs, environments, previewAccessModes, projects, secrets, teams, workflowRuns } from "../db/schema.ts";
import { keyringFromConfig } from "../lib/crypto.ts";
import { ApiError, handleNotFound } from "../lib/errors.ts";
import { newId, newSubdomainHash } from "../lib/ids.ts";
import { validate } from "../lib/validation.ts";
import { agentStub, issueAgentToken } from "./issue-token.ts";
import { agentCommand, previewExposure } from "./protocol.ts";

/**
 * Development and test only: agents for the simulator and the benchmarks without a cloud. `POST /v1/dev/agents`
 * creates the smallest set of rows an agent needs (team, project with optional secrets, environment, run, and a build
 * job for a builder) and issues a token with the same `issueAgentToken` provisioning uses; the other two routes reach
 * the agent's Durable Object.
 *
 * Three locks: a production bundle does not contain them (app.ts mounts them only when the build defines
 * STAGELY_DEV_ROUTES, and everything here is built inside this function so the bundler drops it); a server whose
 * STAGELY_ENV is neither development nor test answers 404 as for any unknown route; and every call needs the API
 * token of a signed-in user.
 */
export function developmentRoutes() {
  const developmentOnly = createMiddleware<AppEnv>(async (c, next) => {
    const stage = configOf(c).STAGELY_ENV;
    if (stage !== "development" && stage !== "test") return handleNotFound(c);
    await next();
  });

  const createAgentBody = z
    .object({
      role: z.enum(["builder", "preview"]),
      /** Project secrets (key → value), e.g. to see log masking work end to end. */
      secrets: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().min(1)).default({}),
      /**
       * Preview agents: what the run's stagely.yaml exposes. The run then waits in `deploying`, so a DEPLOY the agent
       * reports healthy makes the environment ready, and its URL serves through the agent's tunnel.
       */
      preview: previewExposure.optional(),
      preview_access: z.enum(previewAccessModes).default("team"),
    })
    .strict();

  const agentParam = z.object({ id: z.string().regex(/^agt_[0-9a-z]{16}$/) });

  return new Hono<AppEnv>()
    .use("/v1/dev/*", developmentOnly, requireAuth)
    .post("/v1/dev/agents", validate("json", createAgentBody), async (c) => {
      const body = c.req.valid("json");
      const db = dbOf(c);
      const keyring = await keyringFromConfig(configOf(c));
      const suffix = newSubdomainHash().slice(0, 8);
      const hash = newSubdomainHash();
      const ids = { team: newId("team"), project: newId("project"), environment: newId("environment"), run: newId("workflowRun"), job: newId("buildJob") };
      const secretRows = await Promise.all(
        Object.entries(body.secrets).map(async ([key, value]) => {
          const row = { id: newId("secret"), projectId: ids.project, key, scope: "global" };
          return { ...row, encryptedValue: await keyring.encrypt(value, associatedData.secret(row)) };
        }),
      );
      await db.batch([
        db.insert(teams).values({ id: ids.team, slug: `dev-${suffix}`, name: `Development ${suffix}` }),
        db.insert(projects).values({ id: ids.project, teamId: ids.team, slug: "app", name: "Development app", repoUrl: "https://github.com/stagely-dev/app", previewAccess: body.preview_access }),
        db.insert(environments).values({
          id: ids.environment,
          projectId: ids.project,
          prNumber: 1,
          branchName: "dev",
          commitHash: "0000000000000000000000000000000000000000",
          subdomainHash: hash,
          size: "small",
          region: "local",
          status: body.role === "builder" ? "building" : "deploying",
        }),
        db.insert(workflowRuns).values({
          id: ids.run,
          environmentId: ids.environment,
          trigger: "manual_rebuild",
          commitHash: "0000000000000000000000000000000000000000",
          status: body.preview ? "deploying" : "building",
          config: body.preview ? { version: 2, builds: [], preview: { size: "small", lifecycle: { on_start: [] }, ...body.preview } } : null,
        }),
        ...(body.role === "builder"
          ? [db.insert(buildJobs).values({ id: ids.job, workflowRunId: ids.run, name: "app_amd64", architecture: "amd64", contextPath: ".", dockerfilePath: "Dockerfile", status: "provisioning" })]
          : []),
        ...(secretRows.length > 0 ? [db.insert(secrets).values(secretRows)] : []),
      ]);
      const assignment = body.role === "builder" ? { role: "builder" as const, buildJobId: ids.job } : { role: "preview" as const, environmentId: ids.environment };
      const { agentId, token } = await issueAgentToken(c.env, db, assignment);
      return c.json(
        {
          agent_id: agentId,
          token,
          role: body.role,
          project_id: ids.project,
          environment_id: ids.environment,
          run_id: ids.run,
          build_job_id: body.role === "builder" ? ids.job : null,
          subdomain_hash: hash,
        },
        201,
      );
    })
    .get("/v1/dev/agents/:id", validate("param", agentParam), async (c) => {
      const state = await agentStub(c.env, c.req.valid("param").id).getState();
      if (!state) throw new ApiError("NOT_FOUND", "agent not found");
      return c.json(state);
    })
    .post("/v1/dev/agents/:id/commands", validate("param", agentParam), validate("json", agentCommand), async (c) => {
      try {
        return c.json(await agentStub(c.env, c.req.valid("param").id).sendCommand(c.req.valid("json")), 202);
      } catch (error) {
        throw new ApiError("UNPROCESSABLE", `command refused: ${error instanceof Error ? error.message.slice(0, 200) : "invalid"}`);
      }
    });
}
