/**
 * Errors of GitHub calls, classified so callers can decide: retry later (rate_limited, transient), give up and tell
 * the user (not_found, unauthorized, invalid), or tell the operator (misconfigured). Messages are safe to store and
 * show: they name the call and GitHub's own message, never a token, JWT or key.
 */
export type GitHubErrorKind =
  /** The repository, file, deployment or comment does not exist, or the App cannot see it. */
  | "not_found"
  /** Bad or expired credentials (401), or the App lacks a permission (403 without a rate limit). */
  | "unauthorized"
  /** Primary or secondary rate limit; `retryAfterSeconds` says how long to wait. */
  | "rate_limited"
  /** 5xx, timeouts, network failures, unreadable or unexpected answers: worth retrying. */
  | "transient"
  /** GitHub refused the request's content (400, 409, 422), or the caller passed something unusable. */
  | "invalid"
  /** The App is not configured on this server, or its private key cannot be read. */
  | "misconfigured";

export class GitHubError extends Error {
  readonly kind: GitHubErrorKind;
  /** GitHub's HTTP status, when it answered. */
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: GitHubErrorKind, message: string, options: { status?: number; retryAfterSeconds?: number } = {}) {
    super(redactCredentials(message));
    this.name = "GitHubError";
    this.kind = kind;
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** Worth trying again later with the same input. */
  get retryable(): boolean {
    return this.kind === "rate_limited" || this.kind === "transient";
  }
}

export function isGitHubError(error: unknown, kind?: GitHubErrorKind): error is GitHubError {
  return error instanceof GitHubError && (kind === undefined || error.kind === kind);
}

/** Installation, user and OAuth tokens (`ghs_…`, `ghp_…`, `gho_…`, including the longer stateless format) and JWTs. */
const credentialPattern = /\bgh[opsur]_[A-Za-z0-9_.-]{8,}|\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
const MAX_MESSAGE = 300;

/** Removes anything that looks like a GitHub credential and bounds the length. */
export function redactCredentials(text: string): string {
  const out = text.replace(credentialPattern, "***");
  return out.length > MAX_MESSAGE ? `${out.slice(0, MAX_MESSAGE)}…` : out;
}

/** Seconds to wait after a rate-limited answer, following GitHub's documented headers. */
export function rateLimitWait(headers: Headers, now = Date.now()): number {
  const retryAfter = headers.get("retry-after")?.trim();
  if (retryAfter && /^\d+$/.test(retryAfter)) return Number(retryAfter);
  const reset = headers.get("x-ratelimit-reset")?.trim();
  if (headers.get("x-ratelimit-remaining")?.trim() === "0" && reset && /^\d+$/.test(reset)) {
    return Math.max(1, Number(reset) - Math.floor(now / 1000));
  }
  // A secondary limit without headers: GitHub asks to wait at least a minute.
  return 60;
}

function isRateLimited(status: number, headers: Headers, message: string): boolean {
  if (status === 429) return true;
  if (status !== 403) return false;
  return headers.get("x-ratelimit-remaining")?.trim() === "0" || headers.has("retry-after") || /rate limit/i.test(message);
}

/** The classified error for a non-2xx answer to `what` ("GET /repos/acme/web/installation"). */
export function errorFromResponse(response: Response, body: unknown, what: string, now = Date.now()): GitHubError {
  const status = response.status;
  const ghMessage = typeof body === "object" && body !== null && typeof (body as { message?: unknown }).message === "string" ? (body as { message: string }).message : "";
  const message = `GitHub answered ${status} to ${what}${ghMessage ? `: ${ghMessage}` : ""}`;
  if (isRateLimited(status, response.headers, ghMessage)) {
    const wait = rateLimitWait(response.headers, now);
    return new GitHubError("rate_limited", `${message} (retry in ${wait} s)`, { status, retryAfterSeconds: wait });
  }
  if (status === 401 || status === 403) return new GitHubError("unauthorized", message, { status });
  if (status === 404 || status === 410) return new GitHubError("not_found", message, { status });
  if (status === 400 || status === 409 || status === 422) return new GitHubError("invalid", message, { status });
  return new GitHubError("transient", message, { status });
}
