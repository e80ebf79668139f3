import type { AppContext } from "../app-env.ts";
import { handleNotFound } from "../lib/errors.ts";

/** Paths that belong to the API, even when nothing there matches: they answer a JSON 404, never the dashboard. */
const apiPaths = ["/health", "/ready", "/docs", "/openapi.json"];
const isApiPath = (path: string) => path === "/v1" || path.startsWith("/v1/") || apiPaths.includes(path);

/** The dashboard's bundles carry a content hash in their names (scripts/build/dashboard.ts), so they never change. */
const hashedBundle = /^\/ui\/[\w-]+-[A-Z0-9]{8}\.(?:js|css)$/;

// The dashboard talks only to this origin; GitHub avatars are the one outside resource it shows.
const contentSecurityPolicy = [
  "default-src 'self'",
  "img-src 'self' data: https://avatars.githubusercontent.com",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join("; ");

/**
 * Every GET the API does not answer: a static asset from build/assets (wrangler.toml [assets]: the Worker runs first
 * and hands them over here), else, for a page address of the dashboard (no file extension), its index.html, whose
 * client-side router shows the page.
 */
export async function serveDashboard(c: AppContext): Promise<Response> {
  const path = new URL(c.req.url).pathname;
  if (isApiPath(path)) return handleNotFound(c);
  let response = await c.env.ASSETS.fetch(c.req.raw);
  if (response.status === 404 && !/\.[^/]*$/.test(path)) {
    response = await c.env.ASSETS.fetch(new Request(new URL("/", c.req.url), { headers: c.req.raw.headers }));
  }
  response = new Response(response.body, response);
  response.headers.set("X-Content-Type-Options", "nosniff");
  if (hashedBundle.test(path) && response.ok) response.headers.set("Cache-Control", "public, max-age=31536000, immutable");
  if (response.headers.get("Content-Type")?.startsWith("text/html")) {
    response.headers.set("Content-Security-Policy", contentSecurityPolicy);
    response.headers.set("Referrer-Policy", "same-origin");
    response.headers.set("X-Frame-Options", "DENY");
  }
  return response;
}
