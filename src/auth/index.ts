import { finishGitHubLogin, startGitHubLogin } from "./routes/github.ts";
import { logout } from "./routes/logout.ts";
import { getMe } from "./routes/me.ts";
import { useSignInLink } from "./routes/sign-in-link.ts";
import { createToken, listTokens, revokeToken } from "./routes/tokens.ts";

export const authRoutes = [startGitHubLogin, finishGitHubLogin, useSignInLink, logout, getMe, listTokens, createToken, revokeToken];
