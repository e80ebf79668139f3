import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./app-env.ts";
import { healthRoutes } from "./health/routes.ts";
import { ApiError, handleError, handleNotFound } from "./lib/errors.ts";
import { requestContext } from "./lib/request-context.ts";

export const MAX_BODY_BYTES = 1024 * 1024;

export const app = new Hono<AppEnv>()
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
  .notFound(handleNotFound)
  .onError(handleError);
