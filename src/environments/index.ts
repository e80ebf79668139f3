import { createEnvironment } from "./routes/create-environment.ts";
import { deleteEnvironment, rebuildEnvironment } from "./routes/environment-actions.ts";
import { getEnvironment } from "./routes/get-environment.ts";
import { getJob, getJobLogs, streamJobLogsRoute } from "./routes/jobs.ts";
import { listEnvironments, listTeamEnvironments } from "./routes/list-environments.ts";
import { cancelRun, getRun, listRuns } from "./routes/runs.ts";

export const environmentRoutes = [
  listEnvironments,
  listTeamEnvironments,
  createEnvironment,
  getEnvironment,
  deleteEnvironment,
  rebuildEnvironment,
  listRuns,
  getRun,
  cancelRun,
  getJob,
  getJobLogs,
  streamJobLogsRoute,
];
