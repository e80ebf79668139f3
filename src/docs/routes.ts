import { Hono } from "hono/tiny";
import { html, raw } from "hono/html";
import { configOf, type AppEnv } from "../app-env.ts";
import { openApiDocument, registeredRoutes } from "../lib/route.ts";

/** GET /openapi.json (generated from the routes' zod schemas) and GET /docs, a page listing every route. */
export const docsRoutes = new Hono<AppEnv>()
  .get("/openapi.json", (c) => c.json(openApiDocument(configOf(c).PUBLIC_URL)))
  .get("/docs", (c) => {
    const document = openApiDocument(configOf(c).PUBLIC_URL);
    const sections = registeredRoutes().map((route) => {
      const operation = (document.paths[route.path.replace(/:([A-Za-z_]+)/g, "{$1}")] as Record<string, { description: string; requestBody?: unknown }>)[route.method]!;
      return html`<section>
        <h3><code>${route.method.toUpperCase()} ${route.path}</code></h3>
        <p>${route.summary}. <em>${operation.description}</em></p>
        ${operation.requestBody ? html`<details><summary>Request body</summary><pre>${JSON.stringify(operation.requestBody, null, 2)}</pre></details>` : ""}
      </section>`;
    });
    return c.html(html`<!doctype html>
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <title>Stagely API</title>
          <style>
            body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; }
            code, pre { font: 13px ui-monospace, monospace; } pre { background: #f6f8fa; padding: .75rem; overflow: auto; }
            section { border-top: 1px solid #d0d7de; } h3 { margin-bottom: .25rem; }
          </style>
        </head>
        <body>
          <h1>Stagely API</h1>
          <p>Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>. Errors look like
            <code>{"error": {"code", "message", "request_id"}}</code>; lists take <code>limit</code> and <code>cursor</code>
            and answer <code>{"data", "next_cursor"}</code>. The machine-readable spec is <a href="/openapi.json">/openapi.json</a>.</p>
          ${raw(sections.join(""))}
        </body>
      </html>`);
  });
