import { sql } from "drizzle-orm";
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { setCookie } from "hono/cookie";
import { configOf, dbOf, type AppEnv } from "../app-env.ts";
import { ApiError } from "../lib/errors.ts";
import { Logger, type LogLevel } from "../lib/logger.ts";
import {
  RESERVED_PREFIX,
  SHARE_PARAM,
  TOKEN_HEADER,
  pathWithoutShare,
  safeReturnPath,
  sessionCookieName,
  sessionCookieValues,
  withoutSessionCookie,
} from "./credentials.ts";
import type { Admission } from "./host.ts";
import { previewHostOf, type PreviewHostName } from "./hosts.ts";
import { notFoundPage, renderPage, statePage, tunnelPages, type Page } from "./pages.ts";
import { previewHostStub, previewTunnelStub } from "./stubs.ts";
import { TUNNEL_AGENT_HEADER, TUNNEL_ERROR_HEADER, TUNNEL_META_HEADER, tunnelFailures, type TunnelMeta } from "./tunnel.ts";

type PreviewContext = Context<AppEnv>;

/** Headers a visitor may not set: they are Stagely's own, between the Worker and its Durable Objects. */
const internalHeaders = [TUNNEL_META_HEADER, TUNNEL_AGENT_HEADER, TUNNEL_ERROR_HEADER];

/**
 * Requests for preview hosts (`<hash>.<PREVIEW_DOMAIN>`, `<route>--<hash>.<PREVIEW_DOMAIN>`), sent here by the
 * Worker's entry before any API middleware: the host's Durable Object admits the visitor (or not) from what it
 * holds, and an admitted request travels through the preview agent's tunnel to the app. No body limit, no API auth.
 */
export const previewApp = new Hono<AppEnv>()
  .use(async (c, next) => {
    const level = ["debug", "info", "warn", "error"].includes(c.env.LOG_LEVEL) ? (c.env.LOG_LEVEL as LogLevel) : "info";
    const requestId = `req_${crypto.randomUUID().replaceAll("-", "")}`;
    c.set("requestId", requestId);
    c.set("logger", new Logger(level, { request_id: requestId, component: "preview" }));
    if (!hostOf(c)) return renderPage(c, notFoundPage);
    await next();
  })
  .get(`${RESERVED_PREFIX}auth`, async (c) => {
    const host = hostOf(c)!;
    const code = c.req.query("code") ?? "";
    const cookie = /^[0-9a-f]{64}$/.test(code) ? await previewHostStub(c.env, host.hash).redeemSignInCode({ hash: host.hash, code, route: host.route }) : null;
    if (!cookie) {
      return renderPage(c, { code: "UNAUTHORIZED", title: "This sign-in link has expired", message: "Sign-in links work once, for two minutes. Open the preview's address again to sign in." });
    }
    setSessionCookie(c, cookie);
    c.header("Cache-Control", "no-store");
    return c.redirect(safeReturnPath(c.req.query("path")), 302);
  })
  .get(`${RESERVED_PREFIX}logs/:job{job_[0-9a-z]{16}}`, async (c) => {
    const admission = await admit(c);
    if (admission.outcome !== "admitted") return refuse(c, admission);
    if (admission.viewer !== "member") return renderPage(c, { code: "FORBIDDEN", title: "Logs are for the team", message: "Build logs are shown to members of the preview's team only." });
    const { rows } = await dbOf(c).execute<{ seq: number; stream: string; line: string }>(sql`
      SELECT l.seq, l.stream, l.line FROM build_logs l
        JOIN build_jobs j ON j.id = l.build_job_id JOIN workflow_runs r ON r.id = j.workflow_run_id
       WHERE j.id = ${c.req.param("job")} AND r.environment_id = ${admission.view.environmentId}
       ORDER BY l.seq DESC LIMIT 2000`);
    c.header("Cache-Control", "no-store");
    return c.text(rows.reverse().map((r) => r.line).join("\n") || "(no log lines yet)");
  })
  .all(`${RESERVED_PREFIX}*`, (c) => renderPage(c, notFoundPage))
  .all("*", proxy)
  .onError(async (error, c) => {
    if (error instanceof ApiError) return renderPage(c, { code: error.code, title: "Stagely preview", message: error.message });
    c.get("logger")?.error("preview request failed", { error: { name: error.name, message: error.message.slice(0, 200) } });
    return renderPage(c, { code: "INTERNAL", title: "Something went wrong", message: "Stagely could not serve this preview request; try again." });
  });

/** The preview this request is for (the first middleware answered 404 for anything else). */
function hostOf(c: PreviewContext): PreviewHostName | undefined {
  const host = previewHostOf(new URL(c.req.url).hostname, configOf(c));
  return host && host !== "invalid" ? host : undefined;
}

async function admit(c: PreviewContext): Promise<Admission> {
  const host = hostOf(c)!;
  return previewHostStub(c.env, host.hash).admit({
    hash: host.hash,
    route: host.route,
    cookies: sessionCookieValues(c.req.header("Cookie")),
    token: c.req.header(TOKEN_HEADER) ?? null,
    share: new URL(c.req.url).searchParams.get(SHARE_PARAM),
  });
}

/** A visitor the host did not admit: not found, sign in first, or a bad credential. */
function refuse(c: PreviewContext, admission: Exclude<Admission, { outcome: "admitted" }>): Promise<Response> {
  if (admission.outcome === "not_found") return renderPage(c, notFoundPage);
  if (admission.outcome === "invalid_token") return renderPage(c, { code: "UNAUTHORIZED", title: "Access refused", message: admission.message });
  const url = new URL(c.req.url);
  const signIn = new URL(`${configOf(c).PUBLIC_URL}/v1/auth/github/preview`);
  signIn.searchParams.set("origin", url.origin);
  signIn.searchParams.set("path", pathWithoutShare(url));
  const browser = (c.req.method === "GET" || c.req.method === "HEAD") && (c.req.header("Accept") ?? "").includes("text/html");
  if (browser) {
    c.header("Cache-Control", "no-store");
    return Promise.resolve(c.redirect(signIn.toString(), 302));
  }
  return renderPage(c, {
    code: "UNAUTHORIZED",
    title: "Sign in to see this preview",
    message: `This preview is private to its team. Sign in with GitHub at ${signIn.toString()}, or send ${TOKEN_HEADER} with a team member's API token or a share token.`,
    headers: { "WWW-Authenticate": `Bearer realm="stagely-preview"` },
  });
}

async function proxy(c: PreviewContext): Promise<Response> {
  const admission = await admit(c);
  if (admission.outcome !== "admitted") return refuse(c, admission);
  const url = new URL(c.req.url);
  const { view, viewer, cookie } = admission;
  if (cookie && (c.req.method === "GET" || c.req.method === "HEAD")) {
    // A share link was just exchanged for a cookie: show the page without the token in the address bar. (Any other
    // method carrying the parameter is let through once, without a cookie.)
    setSessionCookie(c, cookie);
    c.header("Cache-Control", "no-store");
    return c.redirect(pathWithoutShare(url), 302);
  }
  const page = statePage(view, viewer);
  if (page) return renderPage(c, page);

  const headers = new Headers(c.req.raw.headers);
  for (const name of [...internalHeaders, TOKEN_HEADER]) headers.delete(name);
  const appCookies = withoutSessionCookie(headers.get("Cookie"));
  if (appCookies === null) headers.delete("Cookie");
  else headers.set("Cookie", appCookies);
  headers.set("X-Forwarded-Host", url.host);
  headers.set("X-Forwarded-Proto", url.protocol.slice(0, -1));
  const client = c.req.header("CF-Connecting-IP");
  if (client) headers.set("X-Forwarded-For", client);
  else headers.delete("X-Forwarded-For");
  headers.set(TUNNEL_META_HEADER, JSON.stringify({ path: pathWithoutShare(url), host: url.host, target: view.target! } satisfies TunnelMeta));

  const response = await previewTunnelStub(c.env, view.agentId!).fetch(
    new Request("https://tunnel/exchange", { method: c.req.method, headers, body: c.req.raw.body, redirect: "manual" }),
  );
  const failed = response.headers.get(TUNNEL_ERROR_HEADER);
  if (failed) {
    const detail = await response.text();
    const kind = (tunnelFailures as readonly string[]).includes(failed) ? (failed as keyof typeof tunnelPages) : "offline";
    c.get("logger").info("preview request not answered", { environment_id: view.environmentId, failure: kind });
    const base: Page = tunnelPages[kind];
    return renderPage(c, viewer === "member" && kind !== "busy" ? { ...base, message: `${base.message} (${detail})` } : base);
  }
  return response;
}

function setSessionCookie(c: PreviewContext, cookie: { value: string; maxAgeSeconds: number }): void {
  const secure = new URL(c.req.url).protocol === "https:";
  setCookie(c, sessionCookieName(secure), cookie.value, { httpOnly: true, secure, sameSite: "Lax", path: "/", maxAge: cookie.maxAgeSeconds });
}
