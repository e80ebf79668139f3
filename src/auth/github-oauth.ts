import * as z from "zod";
import type { Config } from "../config.ts";
import { deriveHmacKey, hmacSha256Hex, randomHex, timingSafeEqual } from "../lib/crypto.ts";
import { ApiError } from "../lib/errors.ts";
import { nextLink } from "../pipeline/github/repo.ts";

/** How long a sign-in may take between leaving for GitHub and coming back. */
export const STATE_TTL_SECONDS = 600;
export const STATE_COOKIE = "stagely_oauth_state";

/** HKDF `info` of the key that signs sign-in states: a key of its own, so no extra secret has to be configured. */
export const STATE_KEY_INFO = "stagely/oauth-state/v1";

export interface GitHubOAuthApp {
  clientId: string;
  clientSecret: string;
  webUrl: string;
  apiUrl: string;
  callbackUrl: string;
  stateKey: CryptoKey;
}

const stateKeys = new WeakMap<Config, Promise<CryptoKey>>();

export async function oauthApp(config: Config): Promise<GitHubOAuthApp> {
  if (!config.GITHUB_CLIENT_ID || !config.GITHUB_CLIENT_SECRET) {
    throw new ApiError("SERVICE_UNAVAILABLE", "GitHub sign-in is not configured on this server (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET)");
  }
  let stateKey = stateKeys.get(config);
  if (!stateKey) {
    // States live minutes: a new derivation needs no compatibility with states signed under an older one.
    stateKey = deriveHmacKey(config.ENCRYPTION_KEY, STATE_KEY_INFO);
    stateKeys.set(config, stateKey);
  }
  return {
    clientId: config.GITHUB_CLIENT_ID,
    clientSecret: config.GITHUB_CLIENT_SECRET,
    webUrl: config.GITHUB_WEB_URL,
    apiUrl: config.GITHUB_API_URL,
    callbackUrl: `${config.PUBLIC_URL}/v1/auth/github/callback`,
    stateKey: await stateKey,
  };
}

/**
 * The `state` sent to GitHub: `<nonce>.<expiry>.<hmac>`. The nonce also goes into an HttpOnly cookie, so the
 * callback only accepts a state that this browser started (CSRF) and that has not expired.
 */
export async function signState(app: GitHubOAuthApp): Promise<{ state: string; nonce: string }> {
  const nonce = randomHex(16);
  const expires = Math.floor(Date.now() / 1000) + STATE_TTL_SECONDS;
  const mac = await hmacSha256Hex(app.stateKey, `${nonce}.${expires}`);
  return { state: `${nonce}.${expires}.${mac}`, nonce };
}

export async function verifyState(app: GitHubOAuthApp, state: string, cookieNonce: string | undefined): Promise<void> {
  const [nonce = "", expires = "", mac = ""] = state.split(".");
  const expected = await hmacSha256Hex(app.stateKey, `${nonce}.${expires}`);
  if (!timingSafeEqual(mac, expected)) throw new ApiError("UNAUTHORIZED", "invalid sign-in state; start again at /v1/auth/github");
  if (Number(expires) < Date.now() / 1000) throw new ApiError("UNAUTHORIZED", "the sign-in took too long; start again at /v1/auth/github");
  if (!cookieNonce || !timingSafeEqual(cookieNonce, nonce)) {
    throw new ApiError("UNAUTHORIZED", "this sign-in was not started from this browser; start again at /v1/auth/github");
  }
}

export function authorizeUrl(app: GitHubOAuthApp, state: string): string {
  const url = new URL(`${app.webUrl}/login/oauth/authorize`);
  url.searchParams.set("client_id", app.clientId);
  url.searchParams.set("redirect_uri", app.callbackUrl);
  url.searchParams.set("scope", "read:user user:email");
  url.searchParams.set("state", state);
  url.searchParams.set("allow_signup", "true");
  return url.toString();
}

const tokenResponse = z.union([
  z.object({ access_token: z.string().min(1), token_type: z.string() }),
  z.object({ error: z.string(), error_description: z.string().optional() }),
]);
const githubUser = z.object({
  id: z.number().int(),
  login: z.string(),
  name: z.string().nullable().optional(),
  avatar_url: z.string().nullable().optional(),
});
const githubEmails = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));

export interface GitHubIdentity {
  githubId: number;
  login: string;
  name: string | null;
  avatarUrl: string | null;
  email: string;
}

async function githubJson<T>(response: Response, schema: z.ZodType<T>, what: string): Promise<T> {
  if (!response.ok) throw new ApiError("SERVICE_UNAVAILABLE", `GitHub answered ${response.status} to ${what}; try again`);
  const parsed = schema.safeParse(await response.json().catch(() => undefined));
  if (!parsed.success) throw new ApiError("SERVICE_UNAVAILABLE", `GitHub sent an unexpected answer to ${what}`);
  return parsed.data;
}

function userHeaders(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}`, Accept: "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "stagely" };
}

/**
 * Exchanges an authorization code for the user's access token. `redirectUri` is where GitHub sent the code; `restart`
 * tells the user where to begin again when the code is refused.
 */
export async function exchangeCode(app: GitHubOAuthApp, code: string, redirectUri: string, restart: string): Promise<string> {
  const exchange = await githubJson(
    await fetch(`${app.webUrl}/login/oauth/access_token`, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json", "User-Agent": "stagely" },
      body: JSON.stringify({ client_id: app.clientId, client_secret: app.clientSecret, code, redirect_uri: redirectUri }),
    }),
    tokenResponse,
    "the code exchange",
  );
  if ("error" in exchange) {
    if (exchange.error === "incorrect_client_credentials" || exchange.error === "redirect_uri_mismatch") {
      throw new ApiError("SERVICE_UNAVAILABLE", `GitHub sign-in is misconfigured on this server (${exchange.error})`);
    }
    throw new ApiError("UNAUTHORIZED", `GitHub did not accept this authorization code (expired or already used); ${restart}`);
  }
  return exchange.access_token;
}

/** The GitHub account behind a user access token. */
export async function fetchGitHubUser(app: GitHubOAuthApp, token: string): Promise<{ id: number; login: string }> {
  const user = await githubJson(await fetch(`${app.apiUrl}/user`, { headers: userHeaders(token) }), githubUser, "GET /user");
  return { id: user.id, login: user.login };
}

const userInstallations = z.object({ installations: z.array(z.object({ id: z.number().int() })) });
/** Pages of 100 read while looking for one installation (an account sees at most a few thousand). */
const MAX_INSTALLATION_PAGES = 30;

/** True when the user behind `token` can access this installation of the App (GET /user/installations, every page). */
export async function userCanAccessInstallation(app: GitHubOAuthApp, token: string, installationId: number): Promise<boolean> {
  for (let page = 1; page <= MAX_INSTALLATION_PAGES; page++) {
    const response = await fetch(`${app.apiUrl}/user/installations?per_page=100&page=${page}`, { headers: userHeaders(token) });
    const { installations } = await githubJson(response, userInstallations, "GET /user/installations");
    if (installations.some((i) => i.id === installationId)) return true;
    if (nextLink(response.headers.get("link")) === undefined) return false;
  }
  return false;
}

/** Exchanges the callback's code, then reads the user and their verified primary email. */
export async function fetchIdentity(app: GitHubOAuthApp, code: string): Promise<GitHubIdentity> {
  const token = await exchangeCode(app, code, app.callbackUrl, "start again at /v1/auth/github");
  const [user, emails] = await Promise.all([
    fetch(`${app.apiUrl}/user`, { headers: userHeaders(token) }).then((r) => githubJson(r, githubUser, "GET /user")),
    fetch(`${app.apiUrl}/user/emails`, { headers: userHeaders(token) }).then((r) => githubJson(r, githubEmails, "GET /user/emails")),
  ]);
  const primary = emails.find((e) => e.primary && e.verified);
  if (!primary) throw new ApiError("UNPROCESSABLE", "your GitHub account has no verified primary email; verify one on GitHub and sign in again");
  return { githubId: user.id, login: user.login, name: user.name ?? null, avatarUrl: user.avatar_url ?? null, email: primary.email };
}
