import type { Config } from "../config.ts";

/** A preview host: `<hash>.<PREVIEW_DOMAIN>`, or `<route>--<hash>.<PREVIEW_DOMAIN>` for an extra route. */
export interface PreviewHostName {
  hash: string;
  route: string | null;
}

const LABEL = /^(?:([a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?)--)?([a-z0-9]{16})$/;

/**
 * Which preview a hostname is for: a preview host, "invalid" for any other name under the preview domain (answered
 * 404 by the preview side, never by the API), or undefined when the request is for the API.
 */
export function previewHostOf(hostname: string, config: Pick<Config, "PREVIEW_DOMAIN" | "PUBLIC_URL">): PreviewHostName | "invalid" | undefined {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (name === new URL(config.PUBLIC_URL).hostname) return undefined;
  const suffix = `.${config.PREVIEW_DOMAIN}`;
  if (!name.endsWith(suffix)) return undefined;
  const match = LABEL.exec(name.slice(0, -suffix.length));
  if (!match) return "invalid";
  return { hash: match[2]!, route: match[1] ?? null };
}
