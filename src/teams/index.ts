import { addMember } from "./routes/add-member.ts";
import { createTeam } from "./routes/create-team.ts";
import { deleteTeam } from "./routes/delete-team.ts";
import { getTeam } from "./routes/get-team.ts";
import { listMembers } from "./routes/list-members.ts";
import { listTeams } from "./routes/list-teams.ts";
import { removeMember } from "./routes/remove-member.ts";
import { updateMember } from "./routes/update-member.ts";
import { updateTeam } from "./routes/update-team.ts";

export const teamRoutes = [listTeams, createTeam, getTeam, updateTeam, deleteTeam, listMembers, addMember, updateMember, removeMember];
