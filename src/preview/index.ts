import { createShareToken, listShareTokens, revokeShareToken } from "./routes/share-tokens.ts";
import { finishPreviewSignIn, startPreviewSignIn } from "./routes/sign-in.ts";

/** The API host's preview routes (the preview hosts themselves are served by previewApp, app.ts in this folder). */
export const previewRoutes = [startPreviewSignIn, finishPreviewSignIn, createShareToken, listShareTokens, revokeShareToken];
