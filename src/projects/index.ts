import { createProject } from "./routes/create-project.ts";
import { deleteProject } from "./routes/delete-project.ts";
import { getProject } from "./routes/get-project.ts";
import { listProjects } from "./routes/list-projects.ts";
import { updateProject } from "./routes/update-project.ts";

export const projectRoutes = [listProjects, createProject, getProject, updateProject, deleteProject];
