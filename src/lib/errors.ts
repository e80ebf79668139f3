import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ConfigError } from "../config.ts";
import type { AppEnv } from "../app-env.ts";

export const errorCodes = {
  VALIDATION_FAILED: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  UPGRADE_REQUIRED: 426,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  NOT_IMPLEMENTED: 501,
  BAD_GATEWAY: 502,
  SERVICE_UNAVAILABLE: 503,
  GATEWAY_TIMEOUT: 504,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof errorCodes;

export interface FieldIssue {
  path: string;
  message: string;
}

/** The one error type of the API. Its message is shown to the client, so it must never carry a secret. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly issues: FieldIssue[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, options: { issues?: FieldIssue[]; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.issues = options.issues;
    this.headers = options.headers;
  }

  get status(): ContentfulStatusCode {
    return errorCodes[this.code];
  }
}

/** `{"error": {"code", "message", "request_id", "issues"?}}` with the code's status. */
export function errorResponse(c: Context<AppEnv>, error: ApiError): Response {
  const body = {
    error: {
      code: error.code,
      message: error.message,
      request_id: c.get("requestId"),
      ...(error.issues ? { issues: error.issues } : {}),
    },
  };
  return c.json(body, error.status, error.headers);
}

function fromHttpException(error: HTTPException): ApiError {
  if (error.status === 413) return new ApiError("PAYLOAD_TOO_LARGE", "request body is too large");
  const message = error.message || "bad request";
  if (error.status === 400) return new ApiError("BAD_REQUEST", /malformed json/i.test(message) ? "request body is not valid JSON" : message);
  if (error.status === 401) return new ApiError("UNAUTHORIZED", message);
  return new ApiError("BAD_REQUEST", message);
}

export function handleError(error: Error, c: Context<AppEnv>): Response {
  if (error instanceof ApiError) return errorResponse(c, error);
  if (error instanceof HTTPException) return errorResponse(c, fromHttpException(error));
  const logger = c.get("logger");
  if (error instanceof ConfigError) {
    logger?.error("configuration invalid", { problems: error.problems });
    return errorResponse(c, new ApiError("INTERNAL", "the server is misconfigured; its operator has been told in the logs"));
  }
  logger?.error("unhandled error", { error: { name: error.name, message: error.message, stack: error.stack } });
  return errorResponse(c, new ApiError("INTERNAL", "internal error"));
}

export function handleNotFound(c: Context<AppEnv>): Response {
  return errorResponse(c, new ApiError("NOT_FOUND", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
}
