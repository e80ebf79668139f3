/**
 * Associated data that binds each encrypted value to its row: a ciphertext copied to another row (or another
 * project's secret with the same key) fails to decrypt. Every writer and reader of these columns uses these.
 */
export const associatedData = {
  secret: (row: { projectId: string; key: string; scope: string }) => `secret:${row.projectId}:${row.key}:${row.scope}`,
  cloudCredentials: (row: { id: string }) => `cloud_provider:${row.id}`,
  registryPassword: (row: { projectId: string }) => `project_registry:${row.projectId}`,
};
