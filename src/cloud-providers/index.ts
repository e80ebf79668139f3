import { createCloudProvider } from "./routes/create-cloud-provider.ts";
import { deleteCloudProvider } from "./routes/delete-cloud-provider.ts";
import { getCloudProvider } from "./routes/get-cloud-provider.ts";
import { listCloudProviders } from "./routes/list-cloud-providers.ts";
import { updateCloudProvider } from "./routes/update-cloud-provider.ts";
import { validateCloudProvider } from "./routes/validate-cloud-provider.ts";

export const cloudProviderRoutes = [listCloudProviders, createCloudProvider, getCloudProvider, updateCloudProvider, deleteCloudProvider, validateCloudProvider];
