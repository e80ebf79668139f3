import { Hono } from "hono/tiny";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./app-env.ts";
import { developmentRoutes } from "./agents/dev-routes.ts";
import { agentRoutes } from "./agents/routes.ts";
import { listAuditLogs } from "./audit/routes.ts";
import { authRoutes } from "./auth/index.ts";
import { cloudProviderRoutes } from "./cloud-providers/index.ts";
import { serveDashboard } from "./dashboard/serve.ts";
import { docsRoutes } from "./docs/routes.ts";
import { environmentRoutes } from "./environments/index.ts";
import { healthRoutes } from "./health/routes.ts";
import { installationRoutes } from "./installations/index.ts";
import { ApiError, handleError, handleNotFound } from "./lib/errors.ts";
import { requestContext } from "./lib/request-context.ts";
import { mountRoutes } from "./lib/route.ts";
import { previewRoutes } from "./preview/index.ts";
import { tunnelRoutes } from "./preview/tunnel-route.ts";
import { projectRoutes } from "./projects/index.ts";
import { registryRoutes } from "./registries/index.ts";
import { secretRoutes } from "./secrets/index.ts";
import { teamRoutes } from "./teams/index.ts";
import { githubWebhook } from "./webhooks/github.ts";

export const MAX_BODY_BYTES = 1024 * 1024;

// Every Hono here comes from `hono/tiny`: the same Hono with the smallest router (PatternRouter), 2.4 KiB gzip less
// bundle than the default preset; matching our ~130 routes costs microseconds against a request's database round trip.
const app = new Hono<AppEnv>()
  .use(requestContext)
  .use(
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError("PAYLOAD_TOO_LARGE", `request body exceeds ${MAX_BODY_BYTES} bytes`);
      },
    }),
  )
  .route("/", healthRoutes)
  .route("/", docsRoutes)
  .route("/", agentRoutes)
  .route("/", tunnelRoutes)
  .notFound(handleNotFound)
  .onError(handleError);

// Only in builds that define STAGELY_DEV_ROUTES (npm run dev, the benchmarks, the tests); wrangler.toml [define] leaves
// them out of what `wrangler deploy` bundles.
if (typeof STAGELY_DEV_ROUTES !== "undefined" && STAGELY_DEV_ROUTES) app.route("/", developmentRoutes());

mountRoutes(app, [
  ...authRoutes,
  ...teamRoutes,
  ...projectRoutes,
  ...installationRoutes,
  ...cloudProviderRoutes,
  ...secretRoutes,
  ...registryRoutes,
  ...environmentRoutes,
  ...previewRoutes,
  listAuditLogs,
  githubWebhook,
]);

// Last, so every API route matches first: the rest of GET is the dashboard.
app.get("*", serveDashboard);

export { app };
