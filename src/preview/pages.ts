import type { Context } from "hono";
import { accepts } from "hono/accepts";
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { AppEnv } from "../app-env.ts";
import { ApiError, errorResponse, type ErrorCode } from "../lib/errors.ts";
import type { PreviewView, Viewer } from "./host.ts";

/**
 * What a visitor sees when there is no app to reach: a small HTML page, or the API's error shape for clients that
 * ask for JSON. Details (run progress, log links, the failure reason) are shown to team members only: a share link
 * or a public preview shows the state, never the team's build output.
 */

export interface Page {
  code: ErrorCode;
  title: string;
  /** Safe for anyone who may open this preview. */
  message: string;
  /** Members only. */
  details?: HtmlEscapedString | Promise<HtmlEscapedString>;
  /** The page reloads itself (and JSON answers carry Retry-After). */
  refreshSeconds?: number;
  headers?: Record<string, string>;
}

function wantsJson(c: Context<AppEnv>): boolean {
  return accepts(c, { header: "Accept", supports: ["text/html", "application/json"], default: "text/html" }) === "application/json";
}

export async function renderPage(c: Context<AppEnv>, page: Page): Promise<Response> {
  const error = new ApiError(page.code, page.message, {
    headers: { "Cache-Control": "no-store", ...(page.refreshSeconds ? { "Retry-After": String(page.refreshSeconds) } : {}), ...page.headers },
  });
  if (wantsJson(c)) return errorResponse(c, error);
  const body = await html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
${page.refreshSeconds ? html`<meta http-equiv="refresh" content="${page.refreshSeconds}">` : ""}
<title>${page.title} · Stagely preview</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:12vh auto;padding:0 1.5rem;color:#1f2328}
h1{font-size:1.4rem;margin:0 0 .5rem}p{margin:.5rem 0}small{color:#656d76}
ul{padding-left:1.2rem}li span{color:#656d76}pre{background:#f6f8fa;padding:.75rem;overflow:auto;white-space:pre-wrap}
</style>
</head>
<body>
<h1>${page.title}</h1>
<p>${page.message}</p>
${page.details ?? ""}
<p><small>Stagely preview · request ${c.get("requestId")}</small></p>
</body>
</html>`;
  return c.html(body, error.status, error.headers);
}

export const notFoundPage: Page = { code: "NOT_FOUND", title: "No preview here", message: "There is no preview at this address. It may have been removed when its pull request closed." };

/** The page for an admitted visitor when the environment has no app to reach, or undefined when it does. */
export function statePage(view: PreviewView, viewer: Viewer): Page | undefined {
  const member = viewer === "member";
  const run = view.run;
  switch (view.status) {
    case "pending":
      return { code: "SERVICE_UNAVAILABLE", title: "Preview queued", message: "This preview is waiting for a free slot in its team's quota. This page refreshes itself.", refreshSeconds: 10, details: member ? progress(view) : undefined };
    case "building":
    case "deploying": {
      const jobs = run?.jobs ?? [];
      const done = jobs.filter((j) => j.status === "completed").length;
      const message =
        view.status === "building"
          ? `This preview is being built${jobs.length ? ` (${done} of ${jobs.length} images done)` : ""}. This page refreshes itself until it is ready.`
          : "The images are built; the preview is starting. This page refreshes itself until it is ready.";
      return { code: "SERVICE_UNAVAILABLE", title: view.status === "building" ? "Building the preview" : "Starting the preview", message, refreshSeconds: 5, details: member ? progress(view) : undefined };
    }
    case "failed":
      return {
        code: "BAD_GATEWAY",
        title: "This preview failed",
        message: member ? `The last run failed: ${(run?.error ?? "no reason was recorded").split("\n")[0]}` : "The last build or deploy of this preview failed. The team has been told on the pull request.",
        details: member ? html`${run?.error?.includes("\n") ? html`<pre>${run.error}</pre>` : ""}${progress(view)}` : undefined,
      };
    case "ready":
      if (!view.target) {
        return {
          code: "BAD_GATEWAY",
          title: "Nothing to show",
          message: "This preview does not say which service its URL shows: add preview.expose (service and port) to stagely.yaml.",
        };
      }
      if (!view.agentId) return offlinePage;
      return undefined;
    default:
      return notFoundPage;
  }
}

export const offlinePage: Page = {
  code: "BAD_GATEWAY",
  title: "The preview's machine is not connected",
  message: "The VM running this preview is not connected to Stagely right now (restarting, or its agent is too old for previews). Try again in a minute.",
  refreshSeconds: 30,
};

export const tunnelPages = {
  offline: offlinePage,
  busy: { code: "SERVICE_UNAVAILABLE", title: "Too many requests", message: "This preview is serving as many requests as it can at once. Try again in a moment.", refreshSeconds: 5 },
  timeout: { code: "GATEWAY_TIMEOUT", title: "The app did not answer", message: "The preview's app did not answer in time." },
  unreachable: { code: "BAD_GATEWAY", title: "The app is not answering", message: "The preview's app could not be reached on its exposed port: it may have crashed or not be listening yet." },
} satisfies Record<string, Page>;

/** The run's jobs with links to their logs (members only). */
function progress(view: PreviewView): HtmlEscapedString | Promise<HtmlEscapedString> {
  const run = view.run;
  if (!run || run.jobs.length === 0) return html``;
  return html`<ul>
${run.jobs.map((job) => html`<li>${job.name}: ${job.status} <span>·</span> <a href="/__stagely/logs/${job.id}">logs</a></li>`)}
</ul>`;
}
