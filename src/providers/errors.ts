export type ProviderErrorKind =
  | "invalid_credentials"
  | "quota_exceeded"
  | "unsupported"
  | "rate_limited"
  | "transient"
  | "not_found";

/**
 * A cloud call failed. `message` is safe to show a user: it names the cloud and what went wrong and never carries
 * a credential. `code` is the cloud's own error code when it sent one (AuthFailure, uniqueness_error, ...).
 */
export class ProviderError extends Error {
  readonly kind: ProviderErrorKind;
  readonly code: string | undefined;
  /** Set for rate_limited: how long the cloud asked us to wait. */
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: ProviderErrorKind, message: string, options: { code?: string; retryAfterSeconds?: number } = {}) {
    super(message);
    this.name = "ProviderError";
    this.kind = kind;
    this.code = options.code;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** Worth trying again later with the same input. */
  get retryable(): boolean {
    return this.kind === "rate_limited" || this.kind === "transient";
  }
}

export function isProviderError(error: unknown, kind?: ProviderErrorKind): error is ProviderError {
  return error instanceof ProviderError && (kind === undefined || error.kind === kind);
}
