import { disconnectInstallation } from "./routes/disconnect-installation.ts";
import { getInstallUrl } from "./routes/install-url.ts";
import { installationCallback } from "./routes/installation-callback.ts";
import { listInstallations } from "./routes/list-installations.ts";

export const installationRoutes = [getInstallUrl, installationCallback, listInstallations, disconnectInstallation];
