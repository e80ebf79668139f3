import { randomBytes } from "node:crypto";
import type { FakeService } from "./index.ts";
import { json, listen, readBody } from "./http.ts";

/**
 * GitHub as the OAuth web flow and the REST API see it. Like the real one, the token endpoint answers 200 with an
 * `error` field for a wrong client secret or a bad/reused code, and the API answers 401 "Bad credentials".
 * Test control: POST /_fake/oauth/grant {user, emails, redirect_uri} plays the user approving the app and returns
 * the `code` GitHub would send to the callback.
 */
export const GITHUB_CLIENT_ID = "Iv1.stagelytest00001";
export const GITHUB_CLIENT_SECRET = "fake-github-client-secret-0123456789";

interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  avatar_url: string | null;
}
interface Grant {
  user: GitHubUser;
  emails: { email: string; primary: boolean; verified: boolean; visibility: string | null }[];
  redirectUri?: string;
  used: boolean;
}

export const githubFake: FakeService = {
  name: "github",
  start() {
    const grants = new Map<string, Grant>();
    const accessTokens = new Map<string, Grant>();
    return listen(async (req, res) => {
      const url = new URL(req.url ?? "/", "http://github.test");
      const route = `${req.method} ${url.pathname}`;

      if (route === "POST /_fake/oauth/grant") {
        const body = JSON.parse(await readBody(req)) as { user: GitHubUser; emails: Grant["emails"]; redirect_uri?: string };
        const code = randomBytes(10).toString("hex");
        grants.set(code, { user: body.user, emails: body.emails, redirectUri: body.redirect_uri, used: false });
        return json(res, 200, { code });
      }

      if (route === "POST /login/oauth/access_token") {
        const raw = await readBody(req);
        const params: Record<string, string> = req.headers["content-type"]?.includes("json")
          ? (JSON.parse(raw) as Record<string, string>)
          : Object.fromEntries(new URLSearchParams(raw));
        const docs = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";
        if (params.client_id !== GITHUB_CLIENT_ID || params.client_secret !== GITHUB_CLIENT_SECRET) {
          return json(res, 200, { error: "incorrect_client_credentials", error_description: "The client_id and/or client_secret passed are incorrect.", error_uri: docs });
        }
        const grant = params.code ? grants.get(params.code) : undefined;
        if (!grant || grant.used) {
          return json(res, 200, { error: "bad_verification_code", error_description: "The code passed is incorrect or expired.", error_uri: docs });
        }
        if (grant.redirectUri && params.redirect_uri !== grant.redirectUri) {
          return json(res, 200, { error: "redirect_uri_mismatch", error_description: "The redirect_uri MUST match the registered callback URL for this application.", error_uri: docs });
        }
        grant.used = true;
        const token = `gho_${randomBytes(18).toString("hex")}`;
        accessTokens.set(token, grant);
        return json(res, 200, { access_token: token, token_type: "bearer", scope: "read:user,user:email" });
      }

      const bearer = /^(?:Bearer|token) (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
      const grant = bearer ? accessTokens.get(bearer) : undefined;
      if (route === "GET /user" || route === "GET /user/emails") {
        if (!grant) return json(res, 401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" });
        if (route === "GET /user/emails") return json(res, 200, grant.emails);
        return json(res, 200, { ...grant.user, type: "User", site_admin: false, html_url: `https://github.com/${grant.user.login}` });
      }
      return json(res, 404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" });
    });
  },
};
