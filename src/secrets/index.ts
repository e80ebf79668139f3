import { createSecret } from "./routes/create-secret.ts";
import { deleteSecret } from "./routes/delete-secret.ts";
import { listSecrets } from "./routes/list-secrets.ts";
import { updateSecret } from "./routes/update-secret.ts";

export const secretRoutes = [listSecrets, createSecret, updateSecret, deleteSecret];
