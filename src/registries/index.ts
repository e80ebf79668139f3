import { deleteRegistry } from "./routes/delete-registry.ts";
import { getRegistry } from "./routes/get-registry.ts";
import { putRegistry } from "./routes/put-registry.ts";

export const registryRoutes = [getRegistry, putRegistry, deleteRegistry];
