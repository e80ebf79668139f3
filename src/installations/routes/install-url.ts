import * as z from "zod";
import { configOf } from "../../app-env.ts";
import { oauthApp } from "../../auth/github-oauth.ts";
import { ApiError } from "../../lib/errors.ts";
import { defineRoute } from "../../lib/route.ts";
import { teamParams } from "../../lib/schemas.ts";
import { signInstallState } from "../state.ts";

export const getInstallUrl = defineRoute({
  method: "get",
  path: "/v1/teams/:team/github/install-url",
  summary: "The link that installs the Stagely GitHub App and connects the installation to this team (valid 30 minutes, for the caller only)",
  tag: "github",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamParams,
  response: z.object({ url: z.string(), expires_at: z.string() }),
  handler: async (c, { team: membership }) => {
    const auth = c.get("auth");
    const config = configOf(c);
    if (!config.GITHUB_APP_SLUG) throw new ApiError("SERVICE_UNAVAILABLE", "the GitHub App is not configured on this server (GITHUB_APP_SLUG)");
    // The callback checks who installed with the App's OAuth client: fail now, not after the user went to GitHub.
    oauthApp(config);
    const { state, expiresAt } = await signInstallState(config, { teamId: membership.teamId, userId: auth.user.id });
    const url = new URL(`${config.GITHUB_WEB_URL}/apps/${config.GITHUB_APP_SLUG}/installations/new`);
    url.searchParams.set("state", state);
    return c.json({ url: url.toString(), expires_at: expiresAt.toISOString() });
  },
});
