import * as z from "zod";
import { ProviderError, type ProviderErrorKind } from "./errors.ts";

export interface HttpOptions {
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Per request (default 30 s); a cloud that does not answer in time is a transient error. */
  timeoutMs?: number;
}

export interface CloudHttp {
  /** Sends one request; a network failure or timeout becomes a transient ProviderError. */
  send(request: Request): Promise<Response>;
  /**
   * An excerpt of a cloud's own text (an error body's message) safe to show a team: secrets replaced, printable
   * characters only (control and format characters, line breaks and runs of spaces become one space), at most
   * 120 characters.
   */
  safe(text: string): string;
  /**
   * Sends a JSON API request and answers the parsed body of a 2xx (undefined when empty). Any other status throws
   * `failure(response, body)`, body being the parsed error document when there is one. Unreadable answers are transient.
   */
  json(request: Request, failure: (response: Response, body: unknown) => ProviderError): Promise<unknown>;
  /** A response body checked against the documented shape; anything else is a transient ProviderError. */
  parse<T>(schema: z.ZodType<T>, body: unknown): T;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_EXCERPT_LENGTH = 120;
const unprintable = /[\p{C}\p{Zl}\p{Zp}\s]+/gu;

/** `cloud` names the service in messages ("DigitalOcean"); `secrets` never appear in any message. */
export function cloudHttp(cloud: string, options: HttpOptions, secrets: string[]): CloudHttp {
  const fetchImpl = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const hidden = secrets.filter((secret) => secret.length >= 4);

  const safe = (text: string) => {
    let out = text;
    for (const secret of hidden) out = out.split(secret).join("***");
    // Code points, so a cut never splits a surrogate pair.
    const characters = Array.from(out.replace(unprintable, " ").trim());
    return characters.length > MAX_EXCERPT_LENGTH ? `${characters.slice(0, MAX_EXCERPT_LENGTH).join("")}…` : characters.join("");
  };

  async function send(request: Request): Promise<Response> {
    try {
      return await fetchImpl(request, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      throw new ProviderError(
        "transient",
        timedOut ? `${cloud} did not answer within ${timeoutMs / 1000} s` : `could not reach ${cloud} at ${new URL(request.url).origin}`,
      );
    }
  }

  async function json(request: Request, failure: (response: Response, body: unknown) => ProviderError): Promise<unknown> {
    const response = await send(request);
    const unreadable = new ProviderError("transient", `${cloud} sent an unreadable response (HTTP ${response.status})`);
    const text = await response.text().catch(() => {
      throw unreadable;
    });
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      if (response.ok) throw unreadable;
    }
    if (!response.ok) throw failure(response, body);
    return body;
  }

  function parse<T>(schema: z.ZodType<T>, body: unknown): T {
    const result = schema.safeParse(body);
    if (!result.success) throw new ProviderError("transient", `${cloud} sent an unexpected response`);
    return result.data;
  }

  return { safe, send, json, parse };
}

/** The kind of a failed REST call when the cloud's error code says nothing more specific. */
export function kindForStatus(status: number): ProviderErrorKind {
  if (status === 401 || status === 403) return "invalid_credentials";
  if (status === 404) return "not_found";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "transient";
  return "unsupported";
}

/** Seconds to wait from Retry-After (seconds or a date) or RateLimit-Reset (a Unix time, DigitalOcean and Hetzner). */
export function retryAfterSeconds(headers: Headers, now = Date.now()): number | undefined {
  const retryAfter = headers.get("retry-after");
  if (retryAfter) {
    if (/^\d+$/.test(retryAfter.trim())) return Number(retryAfter);
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return Math.max(0, Math.ceil((at - now) / 1000));
  }
  const reset = headers.get("ratelimit-reset");
  if (reset && /^\d+$/.test(reset.trim())) return Math.max(0, Number(reset) - Math.floor(now / 1000));
  return undefined;
}

const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

/**
 * A provider row's `config.endpoint`: the cloud API's base URL (tests point it at fakes). https, or plain http on a
 * loopback host only, so a team's credentials never travel unencrypted.
 */
export const endpointSchema = z
  .string()
  .refine((value) => {
    if (!URL.canParse(value)) return false;
    const url = new URL(value);
    if (url.search || url.hash || url.username || url.password) return false;
    return url.protocol === "https:" || (url.protocol === "http:" && loopback.test(url.hostname));
  }, "must be an https URL without query or credentials (http only on localhost)")
  .transform((value) => value.replace(/\/+$/, ""));
