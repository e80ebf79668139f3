import { acceptInvitation } from "./routes/accept-invitation.ts";
import { createInvitation } from "./routes/create-invitation.ts";
import { createTeam } from "./routes/create-team.ts";
import { declineInvitation } from "./routes/decline-invitation.ts";
import { deleteTeam } from "./routes/delete-team.ts";
import { getTeam } from "./routes/get-team.ts";
import { listInvitations } from "./routes/list-invitations.ts";
import { listMembers } from "./routes/list-members.ts";
import { listMyInvitations } from "./routes/list-my-invitations.ts";
import { listTeams } from "./routes/list-teams.ts";
import { removeMember } from "./routes/remove-member.ts";
import { revokeInvitation } from "./routes/revoke-invitation.ts";
import { updateMember } from "./routes/update-member.ts";
import { updateTeam } from "./routes/update-team.ts";

export const teamRoutes = [
  listTeams,
  createTeam,
  getTeam,
  updateTeam,
  deleteTeam,
  listMembers,
  updateMember,
  removeMember,
  createInvitation,
  listInvitations,
  revokeInvitation,
  listMyInvitations,
  acceptInvitation,
  declineInvitation,
];
